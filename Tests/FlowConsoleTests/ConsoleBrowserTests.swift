import FlowClient
import FlowCore
import FlowHTTP
import FlowTesting
import Foundation
import Logging
import Testing

/// The console, driven in headless Chromium (Debian's `chromium` and `chromium-driver`,
/// with Selenium from PyPI) against the real processes: the three workers, the
/// coordinator and `flow console`, with the OpenAI worker pointed at the loopback server.
@Suite("the console in a real browser", .serialized)
struct ConsoleBrowserTests {
    func flow(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, arguments, environment: environment) })
            }
        }
    }

    /// The console's port, from the line it prints once it listens.
    func consolePort(_ process: FlowProcess) async throws -> Int? {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let line = process.log.split(separator: "\n").first(where: { $0.hasPrefix("console: http://") }), let port = line.split(separator: ":").last.flatMap({ Int($0) }) {
                return port
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    @Test("an operator sees the parked workflow, replays it and sees it complete; signals, queries and resets workflows, one and in bulk after a preview; filters, dry-runs and purges dead letters; reads the loss curve")
    func operatorScenario() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("console"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-console-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("data")
        let requester = try await TestBroker.connect(name: "test console")
        try await requester.declare(names.topology)
        let broker = ["--topology-prefix", names.prefix!, "--amqp-url", TestBroker.url]

        // The base model and the document, as scripts/run-demo prepares them.
        let model = try await flow(["ml", "init-model", "--output", data.appendingPathComponent("models/base").path, "--tokenizer", Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json").path])
        #expect(model.status == 0, "\(model.standardError)")
        try FileManager.default.createDirectory(at: data.appendingPathComponent("documents"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Repository.file("Tests/FlowDefaultActivitiesTests/Fixtures/report.pdf"), to: data.appendingPathComponent("documents/report.pdf"))

        let worker = try FlowProcess(["worker", "default", "--data-dir", data.path, "--metrics-port", "0"] + broker)
        let mlWorker = try FlowProcess(["worker", "ml", "--data-dir", data.path, "--metrics-port", "0"] + broker)
        var openAIWorker = try FlowProcess(["worker", "openai", "--data-dir", folder.appendingPathComponent("openai").path, "--metrics-port", "0"] + broker, environment: ["OPENAI_API_KEY": ""])
        let coordinator = try FlowProcess(["coordinator", "--data-dir", folder.appendingPathComponent("coordinator").path, "--metrics-port", "0"] + broker)
        let ports = try await [worker, mlWorker, coordinator].asyncMap { try await $0.servingPort() }
        try #require(ports.allSatisfy { $0 != nil }, "a process never served health:\n\(worker.log)\n\(mlWorker.log)\n\(coordinator.log)")

        // Without an OpenAI key the analysis step fails for good and parks the workflow,
        // while the other branch trains and evaluates.
        let workflowID = "onboarding-\(UUID().uuidString.prefix(6).lowercased())"
        let input = #"{"path": "documents/report.pdf", "training": {"max_steps": 12, "save_steps": 4}}"#
        let started = try await flow(["workflow", "start", "document_onboarding", "--input", input, "--id", workflowID, "--wait", "--timeout", "300"] + broker)
        #expect(started.status == 3, "the workflow did not park: \(started.standardOutput)\(started.standardError)\ncoordinator:\n\(coordinator.log)")
        let logger = Logger(label: "test.console")
        let jobID = try await CoordinatorClient.withClient(transport: requester, names: names, logger: logger) { client -> String in
            try await waitUntil(timeout: .seconds(300)) {
                try await client.query(.describe, WorkflowQuery.Describe(workflowID: workflowID), as: WorkflowDescription.self).steps.allSatisfy { $0.status != "scheduled" }
            }
            let steps = try await client.query(.describe, WorkflowQuery.Describe(workflowID: workflowID), as: WorkflowDescription.self).steps
            let training = try #require(steps.first { $0.activity == "train_organizational_model" }?.output)
            return try #require(training.value["job_id"]?.stringValue)
        }

        // For the Signal, Query, Reset and bulk forms: an echo_signals workflow waiting for
        // signals, and an echo_chain that completed.
        let signalsID = "signals-\(UUID().uuidString.prefix(6).lowercased())"
        let signalled = try await flow(["workflow", "signal", signalsID, "add", "--input", #""first""#, "--start", "echo_signals"] + broker)
        #expect(signalled.status == 0, "\(signalled.standardOutput)\(signalled.standardError)")
        let chainID = "chain-\(UUID().uuidString.prefix(6).lowercased())"
        let chained = try await flow(["workflow", "start", "echo_chain", "--input", #"{"text": "browser", "steps": 2}"#, "--id", chainID, "--wait", "--timeout", "60"] + broker)
        #expect(chained.status == 0, "\(chained.standardOutput)\(chained.standardError)")

        // Three dead letters besides the parked step: two of one activity, one of another.
        for _ in 0..<2 {
            _ = try await flow(["activity", "run", "evaluate_model", "--input", #"{"job_id": "x", "base_model": "models/missing", "adapter_path": "training/none", "dataset": "datasets/none.jsonl"}"#] + broker)
        }
        _ = try await flow(["activity", "run", "process_document_upload", "--input", #"{"path": "documents/missing.pdf"}"#] + broker)

        // The operator fixes the cause: the OpenAI worker restarts with a key, against the
        // loopback server.
        let openAI = try await FakeOpenAIServer()
        openAIWorker.signal(SIGTERM)
        _ = try await openAIWorker.waitForExit(timeout: .seconds(30))
        openAIWorker = try FlowProcess(
            ["worker", "openai", "--data-dir", folder.appendingPathComponent("openai").path, "--metrics-port", "0"] + broker,
            environment: ["OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openAI.baseURL, "FLOW_OPENAI_DAILY_BUDGET_USD": "5"]
        )
        let openAIPort = try #require(try await openAIWorker.servingPort(), "\(openAIWorker.log)")

        let endpoints = [
            "worker default=http://127.0.0.1:\(ports[0]!)", "worker ml=http://127.0.0.1:\(ports[1]!)", "worker openai=http://127.0.0.1:\(openAIPort)",
            "coordinator=http://127.0.0.1:\(ports[2]!)",
        ].joined(separator: ",")
        let console = try FlowProcess(["console", "--port", "0", "--endpoints", endpoints, "--operator-name", "browser-test"] + broker, environment: ["FLOW_AUDIT_LOG": folder.appendingPathComponent("audit.jsonl").path])
        let port = try #require(try await consolePort(console), "the console never listened:\n\(console.log)")

        let screenshots = ProcessInfo.processInfo.environment["FLOW_UPDATE_SCREENSHOTS"] == "1"
            ? Repository.file("docs/console").path : folder.appendingPathComponent("screenshots").path
        let browser = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    try ProcessRunner.run("/usr/bin/env", ["python3", Repository.file("Tests/FlowConsoleTests/Browser/console_scenario.py").path], environment: [
                        "CONSOLE_URL": "http://127.0.0.1:\(port)", "WORKFLOW_ID": workflowID, "JOB_ID": jobID, "SCREENSHOTS": screenshots,
                        "SIGNALS_ID": signalsID, "CHAIN_ID": chainID,
                    ])
                })
            }
        }
        #expect(browser.status == 0, "\(browser.standardOutput)\n\(browser.standardError)\nconsole:\n\(console.log.suffix(3000))")
        #expect(browser.standardOutput.contains("browser: bulk actions") && browser.standardOutput.contains("browser: all checks passed"), "\(browser.standardOutput)")
        let taken = (try? FileManager.default.contentsOfDirectory(atPath: screenshots)) ?? []
        #expect(Set(taken).isSuperset(of: ["workflow-parked.png", "workflow-completed.png", "workflows.png", "dead-letters.png", "training-job.png", "queues.png"]))
        let audit = (try? String(contentsOf: folder.appendingPathComponent("audit.jsonl"), encoding: .utf8)) ?? ""
        #expect(audit.components(separatedBy: #""action":"purge""#).count - 1 == 2, "the audit log records the two purged messages:\n\(audit)")
        #expect(audit.contains(#""operator":"browser-test""#))
        for action in ["workflow signal", "workflow reset", "workflow cancel"] {
            #expect(audit.contains(#""action":"\#(action)""#), "the audit log records the console's \(action):\n\(audit)")
        }

        console.signal(SIGTERM)
        #expect(try await console.waitForExit(timeout: .seconds(20)) == 0, "the console did not stop gracefully on SIGTERM:\n\(console.log)")
        for process in [openAIWorker, coordinator, mlWorker, worker] { process.signal(SIGTERM) }
        for process in [openAIWorker, coordinator, mlWorker, worker] { _ = try await process.waitForExit(timeout: .seconds(30)) }
        await openAI.stop()
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        await requester.close()
    }

    @Test("a console on an address other machines reach refuses to start without a token, and with one lets in only who has it")
    func tokenRequiredOffLoopback() async throws {
        let broker = ["--topology-prefix", TestBroker.uniqueName("console-token"), "--amqp-url", TestBroker.url]
        let refused = try await flow(["console", "--host", "0.0.0.0", "--port", "0"] + broker, environment: ["FLOW_CONSOLE_TOKEN": ""])
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("set FLOW_CONSOLE_TOKEN"), "\(refused.standardError)")
        let short = try await flow(["console", "--host", "0.0.0.0", "--port", "0", "--token", "short"] + broker)
        #expect(short.status != 0)
        #expect(short.standardError.contains("at least 16"))

        let token = "a-test-token-of-some-length-42"
        let console = try FlowProcess(["console", "--host", "0.0.0.0", "--port", "0", "--token", token] + broker)
        let port = try #require(try await consolePort(console), "\(console.log)")
        let http = CurlHTTPClient(maximumIdleHandles: 1)
        let anonymous = try await http.send(HTTPRequest(url: "http://127.0.0.1:\(port)/workflows"))
        #expect(anonymous.status == 303)
        #expect(anonymous.headers["location"] == "/login" || anonymous.headers["Location"] == "/login")
        let wrong = try await http.send(HTTPRequest(url: "http://127.0.0.1:\(port)/workflows", headers: [("Authorization", "Bearer not-the-token-at-all")]))
        #expect(wrong.status == 303)
        let post = try await http.send(HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/dead-letters/purge", body: Data("confirm=yes".utf8)))
        #expect(post.status == 401)
        let signedIn = try await http.send(HTTPRequest(url: "http://127.0.0.1:\(port)/queues", headers: [("Authorization", "Bearer \(token)")]))
        #expect(signedIn.status == 200)
        #expect(signedIn.headers.first { $0.key.lowercased() == "content-security-policy" }?.value.contains("frame-ancestors 'none'") == true)
        // Signed in, a change still needs the page's CSRF token.
        let forged = try await http.send(HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/dead-letters/purge", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/x-www-form-urlencoded")], body: Data("confirm=yes".utf8)))
        #expect(forged.status == 403)
        #expect(String(decoding: forged.body, as: UTF8.self).contains("CSRF"))
        console.signal(SIGTERM)
        #expect(try await console.waitForExit(timeout: .seconds(20)) == 0)
    }
}

extension Array {
    func asyncMap<Mapped>(_ transform: (Element) async throws -> Mapped) async rethrows -> [Mapped] {
        var mapped: [Mapped] = []
        for element in self { mapped.append(try await transform(element)) }
        return mapped
    }
}
