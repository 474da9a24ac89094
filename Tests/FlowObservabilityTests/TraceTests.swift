import FlowAMQP
import FlowClient
import FlowCore
import FlowHTTP
import FlowObservability
import FlowTesting
import Foundation
import Logging
import Testing

/// One trace per workflow, across the real processes: the coordinator, the three workers,
/// the broker between them and the HTTP call to the loopback OpenAI server, exported by
/// swift-otel over OTLP/HTTP to a receiver the test runs.
@Suite("traces across the coordinator, the broker, the workers and HTTP", .serialized)
struct TraceTests {
    func flow(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, arguments, environment: environment) })
            }
        }
    }

    @Test("document_onboarding is one trace: workflow → each step → the activity → the HTTP call, and the dead-lettered and replayed step joins it")
    func documentOnboardingIsOneTrace() async throws {
        let receiver = try await OTLPReceiver()
        let names = TopologyNames(prefix: TestBroker.uniqueName("trace"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-trace-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("data")
        let requester = try await TestBroker.connect(name: "test traces")
        try await requester.declare(names.topology)
        let broker = ["--topology-prefix", names.prefix!, "--amqp-url", TestBroker.url, "--metrics-port", "0"]
        let traced = receiver.exporterEnvironment

        let model = try await flow(["ml", "init-model", "--output", data.appendingPathComponent("models/base").path, "--tokenizer", Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json").path])
        #expect(model.status == 0, "\(model.standardError)")
        try FileManager.default.createDirectory(at: data.appendingPathComponent("documents"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Repository.file("Tests/FlowDefaultActivitiesTests/Fixtures/report.pdf"), to: data.appendingPathComponent("documents/report.pdf"))

        let worker = try FlowProcess(["worker", "default", "--data-dir", data.path] + broker, environment: traced.merging(["FLOW_LOG_FORMAT": "json"]) { $1 })
        let mlWorker = try FlowProcess(["worker", "ml", "--data-dir", data.path] + broker, environment: traced)
        var openAIWorker = try FlowProcess(["worker", "openai", "--data-dir", folder.appendingPathComponent("openai").path] + broker, environment: traced.merging(["OPENAI_API_KEY": ""]) { $1 })
        let coordinator = try FlowProcess(["coordinator", "--data-dir", folder.appendingPathComponent("coordinator").path] + broker, environment: traced)
        for process in [worker, mlWorker, openAIWorker] {
            #expect(try await process.servingPort() != nil, "a process never started:\n\(process.log)")
        }
        let mlPort = try #require(try await mlWorker.servingPort())
        let coordinatorPort = try #require(try await coordinator.servingPort(), "\(coordinator.log)")

        // Without an OpenAI key the analysis fails for good, is dead-lettered and parks the
        // workflow while the other branch trains and evaluates.
        let workflowID = "traced-\(UUID().uuidString.prefix(6).lowercased())"
        let input = #"{"path": "documents/report.pdf", "training": {"max_steps": 8, "save_steps": 4}}"#
        let started = try await flow(["workflow", "start", "document_onboarding", "--input", input, "--id", workflowID, "--wait", "--timeout", "300"] + broker.dropLast(2))
        #expect(started.status == 3, "the workflow did not park: \(started.standardOutput)\(started.standardError)\ncoordinator:\n\(coordinator.log)")

        // The operator fixes the cause and replays the dead letter.
        let openAI = try await FakeOpenAIServer()
        openAIWorker.signal(SIGTERM)
        _ = try await openAIWorker.waitForExit(timeout: .seconds(30))
        openAIWorker = try FlowProcess(
            ["worker", "openai", "--data-dir", folder.appendingPathComponent("openai").path] + broker,
            environment: traced.merging(["OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openAI.baseURL]) { $1 }
        )
        #expect(try await openAIWorker.servingPort() != nil, "\(openAIWorker.log)")
        let replayed = try await flow(
            ["dlq", "replay", "--activity", "analyze_document_content", "--workflow", workflowID] + broker.dropLast(2),
            environment: ["FLOW_AUDIT_LOG": folder.appendingPathComponent("audit.jsonl").path]
        )
        #expect(replayed.status == 0, "\(replayed.standardOutput)\(replayed.standardError)")
        try await CoordinatorClient.withClient(transport: requester, names: names, logger: Logger(label: "test.trace")) { client in
            try await waitUntil(timeout: .seconds(120)) {
                try await client.query(.describe, WorkflowQuery.Describe(workflowID: workflowID), as: WorkflowDescription.self).workflow.status == .completed
            }
        }

        // A client outside the system (pika, say) sends a request in a trace of its own.
        let outsideTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let outsideSpan = "00f067aa0ba902b7"
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: ["traceparent": .string("00-\(outsideTrace)-\(outsideSpan)-01")],
            deliveryMode: 2, messageID: "outside-\(UUID().uuidString.prefix(6))", type: "echo"
        )
        try await requester.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(.default), properties: properties, body: Array(#"{"hello": "trace"}"#.utf8)))
        try await waitUntil(timeout: .seconds(30)) { receiver.spans.contains { $0.traceID == outsideTrace } }

        // The ML worker's and the coordinator's /metrics after the run: eight steps, two
        // checkpoints, one workflow of seven steps (the last stores its report) that ended
        // completed.
        let http = CurlHTTPClient(maximumIdleHandles: 1)
        let ml = PrometheusText(String(decoding: try await http.send(HTTPRequest(url: "http://127.0.0.1:\(mlPort)/metrics")).body, as: UTF8.self))
        let base = ["flow_training_model": "models/base"]
        #expect(ml.types["flow_training_steps_total"] == "counter" && ml.types["flow_training_loss"] == "gauge")
        #expect(ml.sum("flow_training_steps_total", matching: base) == 8)
        #expect(ml.sum("flow_training_step_duration_seconds_count", matching: base) == 8)
        #expect(ml.sum("flow_training_checkpoints_total", matching: base) == 2)
        #expect(ml.sum("flow_training_jobs_running") == 0)
        #expect((ml.samples("flow_training_loss", matching: base).first?.value ?? 0) > 0)
        let coordinated = PrometheusText(String(decoding: try await http.send(HTTPRequest(url: "http://127.0.0.1:\(coordinatorPort)/metrics")).body, as: UTF8.self))
        let onboarding = ["flow_workflow_name": "document_onboarding"]
        #expect(coordinated.sum("flow_workflow_ends_total", matching: onboarding.merging(["flow_workflow_status": "completed"]) { $1 }) == 1)
        #expect(coordinated.sum("flow_workflow_steps_sum", matching: onboarding) == 7)
        #expect(coordinated.sum("flow_coordinator_events_total", matching: ["event": "step_parked"]) == 1)
        #expect(coordinated.sum("flow_step_duration_seconds_count", matching: ["flow_activity_name": "analyze_document_content", "flow_outcome": "completed"]) == 1)

        // Stopping flushes what each exporter still holds.
        for process in [openAIWorker, coordinator, mlWorker, worker] { process.signal(SIGTERM) }
        for process in [openAIWorker, coordinator, mlWorker, worker] { #expect(try await process.waitForExit(timeout: .seconds(30)) == 0) }
        #expect(receiver.unreadable.isEmpty, "\(receiver.unreadable)")

        let spans = receiver.spans
        let dump = spans.map(\.description).joined(separator: "\n")
        let workflowSpans = spans.filter { $0.name == "workflow document_onboarding" && $0.attributes["flow.workflow.id"] == workflowID }
        let root = try #require(workflowSpans.first, "no workflow span:\n\(dump)")
        #expect(root.service == "flow-coordinator")
        let trace = spans.filter { $0.traceID == root.traceID }
        let byID = Dictionary(trace.map { ($0.spanID, $0) }, uniquingKeysWith: { first, _ in first })
        func children(of span: OTLPReceiver.Span, named prefix: String) -> [OTLPReceiver.Span] {
            trace.filter { $0.parentSpanID == span.spanID && $0.name.hasPrefix(prefix) }
        }

        // workflow → a step span for each activity → the worker's span for each attempt.
        let activities = ["process_document_upload", "parse_document", "storage_put", "analyze_document_content", "train_organizational_model", "evaluate_model"]
        for activity in activities {
            let step = try #require(children(of: root, named: "send \(activity)").first, "no step span for \(activity):\n\(dump)")
            #expect(step.kind == .producer)
            #expect(step.attributes["flow.activity.name"] == activity)
            #expect(step.attributes["flow.workflow.id"] == workflowID)
            #expect(step.attributes["messaging.destination.name"]?.hasPrefix(names.prefix!) == true)
            let attempts = children(of: step, named: "process \(activity)")
            #expect(!attempts.isEmpty, "no worker span under the step of \(activity):\n\(dump)")
            for attempt in attempts {
                #expect(attempt.kind == .consumer)
                #expect(attempt.service.hasPrefix("flow-worker-"))
                #expect(attempt.attributes["flow.activity.name"] == activity)
                #expect(attempt.attributes["flow.workflow.id"] == workflowID)
                #expect(attempt.attributes["messaging.system"] == "rabbitmq")
                #expect(attempt.attributes["flow.activity.attempt"] != nil)
                #expect(attempt.attributes["messaging.destination.name"] == step.attributes["messaging.destination.name"])
            }
        }

        // The analysis: dead-lettered once, then replayed, both under the one step span.
        let analysisStep = try #require(children(of: root, named: "send analyze_document_content").first)
        let analyses = children(of: analysisStep, named: "process analyze_document_content")
        #expect(analyses.count == 2, "\(dump)")
        let failed = try #require(analyses.first { $0.attributes["flow.outcome"] == "dead_lettered" }, "\(dump)")
        #expect(failed.events.contains("dead-lettered"))
        #expect(failed.statusCode == 2)
        let replay = try #require(analyses.first { $0.attributes["flow.outcome"] == "completed" }, "\(dump)")
        #expect(replay.events.contains("replayed from the dead-letter queue"))

        // → the HTTP call, whose context the loopback server received in `traceparent`.
        let call = try #require(children(of: replay, named: "chat ").first, "no HTTP span under the replayed analysis:\n\(dump)")
        #expect(call.kind == .client)
        #expect(call.attributes["gen_ai.request.model"] != nil)
        #expect(call.attributes["http.response.status_code"] == "200")
        let carried = openAI.received.compactMap { $0.headers["traceparent"] }
        #expect(carried.contains { $0.contains(root.traceID) && $0.contains(call.spanID) }, "the request carried \(carried)")

        // Training: load, train, and a span per checkpoint under the train span.
        let training = try #require(children(of: children(of: root, named: "send train_organizational_model")[0], named: "process train_organizational_model").last)
        #expect(!children(of: training, named: "load ").isEmpty, "\(dump)")
        let train = try #require(children(of: training, named: "train ").first, "\(dump)")
        #expect(children(of: train, named: "checkpoint").count >= 2, "8 steps, a checkpoint every 4:\n\(dump)")

        // Every span of the trace hangs from the workflow's: no orphan but the root.
        for span in trace where span.spanID != root.spanID {
            var cursor = span
            var hops = 0
            while let parent = cursor.parentSpanID, let next = byID[parent], hops < 20 {
                cursor = next
                hops += 1
            }
            #expect(cursor.spanID == root.spanID, "\(span) does not lead to the workflow span")
        }

        // The outside client's request continued its trace, under its span.
        let outside = try #require(spans.first { $0.traceID == outsideTrace && $0.name == "process echo" }, "\(dump)")
        #expect(outside.parentSpanID == outsideSpan)
        // Log lines name the trace and span they were written in.
        let logLine = worker.log.split(separator: "\n").first { $0.contains(outsideTrace) && $0.contains("activity completed") }
        #expect(logLine?.contains(#""span_id":"\#(outside.spanID)""#) == true, "no JSON log line of the traced echo:\n\(worker.log.suffix(2000))")

        await openAI.stop()
        await receiver.stop()
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        await requester.close()
    }

    @Test("a workflow resumed after a coordinator restart stays in its trace: the new workflow span hangs from the first, and the step sent before the restart keeps its span")
    func restartKeepsTheTrace() async throws {
        let receiver = try await OTLPReceiver()
        let names = TopologyNames(prefix: TestBroker.uniqueName("trace-restart"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-trace-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let requester = try await TestBroker.connect(name: "test trace restart")
        try await requester.declare(names.topology)
        let broker = ["--topology-prefix", names.prefix!, "--amqp-url", TestBroker.url]
        let service = broker + ["--metrics-port", "0"]
        let coordinatorArguments = ["coordinator", "--data-dir", folder.appendingPathComponent("coordinator").path] + service

        // No worker yet: the first step is sent and waits in its queue.
        var coordinator = try FlowProcess(coordinatorArguments, environment: receiver.exporterEnvironment)
        #expect(try await coordinator.servingPort() != nil, "\(coordinator.log)")
        let workflowID = "restarted-\(UUID().uuidString.prefix(6).lowercased())"
        let started = try await flow(["workflow", "start", "echo_chain", "--input", #"{"text": "again", "steps": 3}"#, "--id", workflowID] + broker)
        #expect(started.status == 0, "\(started.standardError)")
        try await waitUntil(timeout: .seconds(30)) {
            try await Task.sleep(for: .milliseconds(50))
            return try await requester.inspectQueue(names.queue(.default)).messageCount == 1
        }
        coordinator.signal(SIGTERM)
        #expect(try await coordinator.waitForExit(timeout: .seconds(30)) == 0)

        coordinator = try FlowProcess(coordinatorArguments, environment: receiver.exporterEnvironment)
        try await waitUntil(timeout: .seconds(30)) {
            try await Task.sleep(for: .milliseconds(20))
            return coordinator.log.contains("resuming workflow")
        }
        let worker = try FlowProcess(["worker", "default", "--data-dir", folder.appendingPathComponent("data").path] + service, environment: receiver.exporterEnvironment)
        #expect(try await worker.servingPort() != nil, "\(worker.log)")
        try await CoordinatorClient.withClient(transport: requester, names: names, logger: Logger(label: "test.trace")) { client in
            try await waitUntil(timeout: .seconds(60)) {
                try await Task.sleep(for: .milliseconds(100))
                return try await client.query(.describe, WorkflowQuery.Describe(workflowID: workflowID), as: WorkflowDescription.self).workflow.status == .completed
            }
        }
        for process in [coordinator, worker] { process.signal(SIGTERM) }
        for process in [coordinator, worker] { #expect(try await process.waitForExit(timeout: .seconds(30)) == 0) }

        let spans = receiver.spans
        let dump = spans.map(\.description).joined(separator: "\n")
        let workflows = spans.filter { $0.name == "workflow echo_chain" && $0.attributes["flow.workflow.id"] == workflowID }
        #expect(workflows.count == 2, "\(dump)")
        let first = try #require(workflows.first { $0.events.contains("suspended") }, "\(dump)")
        let resumed = try #require(workflows.first { $0.events.contains("resumed") }, "\(dump)")
        #expect(resumed.parentSpanID == first.spanID)
        #expect(resumed.traceID == first.traceID)
        let trace = spans.filter { $0.traceID == first.traceID }
        // The step sent before the restart: its span ended with the first coordinator, and
        // the worker's span for that very message is its child.
        let firstSend = try #require(trace.first { $0.name == "send echo" && $0.parentSpanID == first.spanID }, "\(dump)")
        let processed = trace.filter { $0.name == "process echo" }
        #expect(processed.count == 3, "\(dump)")
        #expect(processed.contains { $0.parentSpanID == firstSend.spanID }, "\(dump)")
        // The resumed run sends the other two steps. The first step's reply is either still
        // on its way (the run waits for it in a span that says so) or already recorded
        // (the run takes it from the history, which sends nothing and makes no span).
        let resumedSends = trace.filter { $0.name == "send echo" && $0.parentSpanID == resumed.spanID }
        let waited = resumedSends.filter { $0.events.contains("waiting for the reply to an earlier send") }
        #expect(resumedSends.count - waited.count == 2, "\(dump)")
        #expect(waited.count <= 1, "\(dump)")
        #expect(Set(spans.filter { $0.attributes["flow.workflow.id"] == workflowID }.map(\.traceID)) == [first.traceID])

        await receiver.stop()
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        await requester.close()
    }

    @Test("an exporter protocol that is not built in stops the service at its start with what to use instead, not a crash")
    func unknownProtocol() async throws {
        let broker = ["--topology-prefix", TestBroker.uniqueName("trace-protocol"), "--amqp-url", TestBroker.url, "--metrics-port", "off"]
        for protocolName in ["grpc", "thrift"] {
            let result = try await flow(["worker", "default", "--data-dir", FileManager.default.temporaryDirectory.appendingPathComponent("flow-protocol").path] + broker, environment: [
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": protocolName,
            ])
            #expect(result.status == 64, "\(result.standardError)")
            #expect(result.standardError.contains("OTEL_EXPORTER_OTLP_PROTOCOL=\(protocolName) is not a protocol flow exports traces with: use http/protobuf"), "\(result.standardError)")
        }
    }
}
