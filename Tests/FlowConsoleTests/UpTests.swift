import FlowTesting
import Foundation
import Testing

/// `flow up`: the whole local stack in one command.
@Suite("flow up")
struct UpTests {
    @Test("it starts the workers, the coordinator and the console, starts a killed worker again, and stops them all on SIGINT, the console first")
    func stack() async throws {
        // flow up starts a broker when none answers: the test broker must be there first,
        // so that a test never starts one of its own.
        await (try TestBroker.connect(name: "test flow up")).close()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-up-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        // Ports of their own, away from the standard ones another stack may hold.
        let first = Int.random(in: 21_000..<29_000)
        let up = try FlowProcess([
            "up", "--workers", "default=2,ml=0,openai=0", "--first-port", String(first), "--topology-prefix", TestBroker.uniqueName("up"),
            "--amqp-url", TestBroker.url, "--data-dir", folder.appendingPathComponent("data").path,
            "--coordinator-data-dir", folder.appendingPathComponent("coordinator").path,
        ])
        try await waitUntil(timeout: .seconds(120)) { up.log.contains("Ctrl-C stops everything.") }
        let log = up.log
        for name in ["worker-default-1", "worker-default-2", "coordinator", "console"] { #expect(log.contains(name), "\(log)") }
        #expect(!log.contains("worker-ml"))
        #expect(log.contains("console: http://127.0.0.1:\(first + 3)"))

        // Kill the second worker: the supervisor starts it again.
        let killed = try await ProcessRunner.run("/usr/bin/pkill", ["-KILL", "-f", "metrics-port \(first + 1)"])
        #expect(killed.status == 0)
        try await waitUntil(timeout: .seconds(60)) { up.log.contains("[worker-default-2] exited with status 9; starting it again") }
        try await waitUntil(timeout: .seconds(60)) { up.log.components(separatedBy: "[worker-default-2]").count > 3 && ProcessRunner.runQuietly("/usr/bin/pgrep", ["-f", "metrics-port \(first + 1)"]) }

        up.signal(SIGINT)
        #expect(try await up.waitForExit(timeout: .seconds(60)) == 0, "\(up.log)")
        let stops = up.log.split(separator: "\n").filter { $0.hasPrefix("[up] stopping ") }.map { String($0.dropFirst("[up] stopping ".count)) }
        #expect(stops == ["console", "coordinator", "worker-default-2", "worker-default-1"])
        #expect(up.log.contains("[up] stopped"))
        #expect(!ProcessRunner.runQuietly("/usr/bin/pgrep", ["-f", "first-port \(first)|metrics-port \(first)"]))
    }
}

extension UpTests {
    @Test("with --serve-model it starts flow ml serve first, and, with no OPENAI_API_KEY, points the OpenAI workers at it")
    func servedModel() async throws {
        await (try TestBroker.connect(name: "test flow up --serve-model")).close()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-up-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("base")
        let made = try await ProcessRunner.run(Repository.flowExecutable.path, [
            "ml", "init-model", "--output", model.path, "--tokenizer", Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json").path,
        ])
        #expect(made.status == 0, "\(made.standardError)")
        let first = Int.random(in: 21_000..<29_000)
        let servePort = first + 50
        let up = try FlowProcess([
            "up", "--workers", "default=0,ml=0,openai=1", "--first-port", String(first), "--topology-prefix", TestBroker.uniqueName("up-serve"),
            "--amqp-url", TestBroker.url, "--data-dir", folder.appendingPathComponent("data").path,
            "--coordinator-data-dir", folder.appendingPathComponent("coordinator").path, "--serve-model", model.path, "--serve-port", String(servePort),
        ], environment: ["OPENAI_API_KEY": ""])
        try await waitUntil(timeout: .seconds(120)) { up.log.contains("Ctrl-C stops everything.") }
        #expect(up.log.contains("[ml-serve] serving: http://127.0.0.1:\(servePort)/v1"), "\(up.log)")
        #expect(up.log.contains("the OpenAI workers call it (no OPENAI_API_KEY is set)"))
        let models = try await ProcessRunner.run("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(servePort)/v1/models"])
        #expect(models.standardOutput.contains(#""id":"organisation-base""#), "\(models.standardOutput)")
        // The OpenAI worker's environment names the served model.
        let pid = try await ProcessRunner.run("/usr/bin/pgrep", ["-f", "worker openai .*metrics-port \(first)"]).standardOutput.split(separator: "\n").first.map(String.init) ?? ""
        let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))).map { String(decoding: $0, as: UTF8.self).split(separator: "\0").map(String.init) } ?? []
        #expect(environ.contains("OPENAI_BASE_URL=http://127.0.0.1:\(servePort)/v1") && environ.contains("FLOW_OPENAI_MODEL=organisation-base"), "\(environ.filter { $0.contains("OPENAI") })")

        up.signal(SIGINT)
        #expect(try await up.waitForExit(timeout: .seconds(60)) == 0, "\(up.log)")
        let stops = up.log.split(separator: "\n").filter { $0.hasPrefix("[up] stopping ") }.map { String($0.dropFirst("[up] stopping ".count)) }
        #expect(stops.last == "ml-serve", "the model server stops last, after the workers that call it: \(stops)")
    }
}

extension ProcessRunner {
    /// Whether the command exits 0, its output ignored.
    static func runQuietly(_ executable: String, _ arguments: [String]) -> Bool {
        (try? run(executable, arguments).status) == 0
    }
}
