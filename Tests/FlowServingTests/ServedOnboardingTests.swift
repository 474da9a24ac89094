import FlowCore
import FlowTesting
import FlowTransport
import Foundation
import Testing

/// The application's workflow with the organisation's own model answering on openai-queue:
/// `flow ml serve` behind the OpenAI worker, as the demo sets it up.
@Suite("document_onboarding with the served model", .serialized)
struct ServedOnboardingTests {
    func flow(_ arguments: [String]) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, arguments) })
            }
        }
    }

    @Test("document_onboarding with require_approval completes: its analysis written by flow ml serve, training let through by the approve_training signal")
    func completes() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("served"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-served-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("data")
        let requester = try await TestBroker.connect(name: "test served onboarding")
        try await requester.declare(names.topology)
        let broker = ["--topology-prefix", names.prefix!, "--amqp-url", TestBroker.url]

        let base = data.appendingPathComponent("models/base")
        let model = try await flow(["ml", "init-model", "--output", base.path, "--tokenizer", Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json").path])
        #expect(model.status == 0, "\(model.standardError)")
        try FileManager.default.createDirectory(at: data.appendingPathComponent("documents"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Repository.file("Tests/FlowDefaultActivitiesTests/Fixtures/report.pdf"), to: data.appendingPathComponent("documents/report.pdf"))

        let server = try FlowProcess(["ml", "serve", "--model", base.path, "--name", "organisation-base", "--port", "0"])
        try await waitUntil(timeout: .seconds(60)) { server.log.contains("serving: http://") }
        let url = try #require(server.log.split(separator: "\n").first { $0.hasPrefix("serving: ") }?.split(separator: " ")[1]).description
        let processes = [
            try FlowProcess(["worker", "default", "--data-dir", data.path, "--metrics-port", "off"] + broker),
            try FlowProcess(["worker", "ml", "--data-dir", data.path, "--metrics-port", "off"] + broker),
            try FlowProcess(
                ["worker", "openai", "--data-dir", folder.appendingPathComponent("openai").path, "--metrics-port", "off"] + broker,
                environment: ["OPENAI_API_KEY": "local", "OPENAI_BASE_URL": url, "FLOW_OPENAI_MODEL": "organisation-base"]
            ),
            try FlowProcess(["coordinator", "--data-dir", folder.appendingPathComponent("coordinator").path, "--metrics-port", "off"] + broker),
        ]
        let input = #"{"path": "documents/report.pdf", "require_approval": true, "training": {"max_steps": 4, "save_steps": 2}}"#
        let started = try await flow(["workflow", "start", "document_onboarding", "--input", input, "--id", "served-1"] + broker)
        #expect(started.status == 0, "\(started.standardError)")
        // Recorded now, received when the workflow asks, after the analysis.
        let approved = try await flow(["workflow", "signal", "served-1", "approve_training", "--input", #"{"approver": "the test"}"#] + broker)
        #expect(approved.status == 0, "\(approved.standardOutput)\(approved.standardError)")

        let store = ["--data-dir", folder.appendingPathComponent("coordinator").path]
        let ended: @Sendable () async throws -> String = {
            try await flow(["workflow", "show", "served-1"] + store).standardOutput
        }
        try await waitUntil(timeout: .seconds(300)) {
            let text = try await ended()
            return ["completed", "failed", "parked"].contains { text.contains("status    \($0)") }
        }
        let shown = try await ended()
        #expect(shown.contains("status    completed"), "\(shown)\nopenai worker:\n\(processes[2].log.suffix(3000))\nserver:\n\(server.log.suffix(2000))")
        let outputLine = shown.split(separator: "\n").first { $0.hasPrefix("output    ") }.map { String($0.dropFirst(10)) } ?? "{}"
        let output = try FlowJSON.decode(JSONValue.self, from: outputLine)
        #expect(output["model"].map { $0 != JSONValue.null } == true, "approved, the organisation's model was trained: \(output)")
        let analysis = try #require(output["analysis"], "\(output)")
        #expect(analysis["model"]?.stringValue == "organisation-base", "the served model wrote the analysis: \(analysis)")
        #expect(analysis["analysis"]?["summary"]?.stringValue != nil && analysis["analysis"]?["risks"]?.arrayValue != nil, "the analysis follows its schema: \(analysis)")
        #expect(output["approval"]?["decision"]?.stringValue == "approved" && output["approval"]?["approver"]?.stringValue == "the test", "\(output)")
        let progress = try await flow(["workflow", "query", "served-1", "progress"] + store)
        #expect(progress.standardOutput.contains(#""approval": "approved""#) || progress.standardOutput.contains(#""approval":"approved""#), "\(progress.standardOutput)")

        for process in processes + [server] { process.signal(SIGTERM) }
        for process in processes + [server] { _ = try await process.waitForExit(timeout: .seconds(30)) }
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
        await requester.close()
    }
}
