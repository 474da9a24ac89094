import FlowAMQP
import FlowCoordinator
import FlowCore
import FlowObservability
import FlowTesting
import Foundation
import Synchronization
import Testing

/// The real `flow coordinator` and `flow worker default` processes, on a private topology.
@Suite("the coordinator process under SIGKILL", .serialized)
struct CoordinatorProcessTests {
    /// What a kill test starts: `count` workflows of one kind, each calling `steps` activities.
    struct Kind: Sendable, CustomTestStringConvertible {
        var workflow: String
        var count: Int
        var steps: Int
        var input: @Sendable (Int) throws -> JSONText
        var output: @Sendable (Int) -> String
        /// The coordinator's store: its data folder's SQLite file, or a new PostgreSQL database.
        var postgres = false

        var testDescription: String { "\(count) \(workflow) on \(postgres ? "PostgreSQL" : "SQLite")" }

        static let chains = Kind(
            workflow: "echo_chain", count: 40, steps: 3,
            input: { try JSONText(encoding: ["text": .string("payload \($0)"), "steps": .int(3), "pause_seconds": .int(2)] as [String: JSONValue]) },
            output: { #"{"steps":3,"text":"payload \#($0)"}"# }
        )
        /// Two `echo_chain` children each: the parent's commands, the children's starts and
        /// their ends crossing from child to parent are all in the kills' way.
        static let families = Kind(
            workflow: "echo_fan_out", count: 20, steps: 6,
            input: { try JSONText(encoding: ["text": .string("payload \($0)"), "children": .int(2), "steps": .int(3), "pause_seconds": .int(2)] as [String: JSONValue]) },
            output: { #"[{"steps":3,"text":"payload \#($0) 0"},{"steps":3,"text":"payload \#($0) 1"}]"# }
        )
        static let chainsOnPostgres = { var kind = chains; kind.postgres = true; return kind }()
    }

    @Test("workflows (and child workflows) finish with the right outputs while the coordinator is killed three times, and no completed activity runs twice", arguments: [Kind.chains, Kind.families, Kind.chainsOnPostgres])
    func killedThreeTimes(kind: Kind) async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("killed"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-killed-\(UUID().uuidString.prefix(8))")
        let requester = try await TestBroker.connect(name: "test killed coordinator")
        try await requester.declare(names.topology)
        let resultQueue = TestBroker.uniqueName("results")
        try await requester.declare(Topology(queues: [.init(name: resultQueue, durable: false, exclusive: true, autoDelete: true)]))
        let common = ["--topology-prefix", names.prefix!, "--metrics-port", "off", "--amqp-url", TestBroker.url]
        let worker = try FlowProcess(["worker", "default", "--data-dir", folder.appendingPathComponent("worker").path, "--concurrency", "8"] + common)
        let store = kind.postgres ? ["--store", try await TestPostgres.newDatabase().url] : ["--data-dir", folder.appendingPathComponent("coordinator").path]
        let coordinatorArguments = ["coordinator"] + store + common
        var coordinator = try FlowProcess(coordinatorArguments)

        let count = kind.count
        let steps = kind.steps
        for index in 0..<count {
            let start = WorkflowCommand.Start(workflow: kind.workflow, workflowID: "killed-\(index)", input: try kind.input(index))
            let properties = AMQPProperties(
                contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: "killed-\(index)", replyTo: resultQueue,
                messageID: "start-\(index)", type: WorkflowCommand.Kind.start.rawValue
            )
            try await requester.publish(AMQPMessage(routingKey: names.name(Topology.workflowCommandQueue), properties: properties, body: Array(try FlowJSON.encode(start))))
        }

        let results = try await requester.consume(queue: resultQueue, prefetch: 100)
        let collected = Collected<(messageID: String?, result: WorkflowResult)>()
        let reader = Task {
            for try await delivery in results {
                try await delivery.ack()
                if let result = try? FlowJSON.decode(WorkflowResult.self, from: delivery.body) { await collected.add((delivery.properties.messageID, result)) }
            }
        }
        // Each workflow takes about four seconds (three steps, a two-second durable pause
        // between them); kill the coordinator in the middle, three times.
        for delay in [1200, 1200, 1200] {
            try await Task.sleep(for: .milliseconds(delay))
            coordinator.signal(SIGKILL)
            _ = try await coordinator.waitForExit(timeout: .seconds(10))
            coordinator = try FlowProcess(coordinatorArguments)
        }
        // Every workflow's result, counted by workflow.
        try? await waitUntil(timeout: .seconds(90)) { Set(await collected.all.map(\.result.workflowID)).count >= count }
        let received = await collected.all
        // A kill between a result's publish and the record that it went out sends it again
        // after the restart (at least once, docs/workflows.md): under the same message id,
        // so a starter can tell. Anything else twice is a fault.
        var finished: [WorkflowResult] = []
        for (messageID, result) in received {
            #expect(messageID == "\(result.workflowID)#result")
            if let first = finished.first(where: { $0.workflowID == result.workflowID }) {
                #expect(first == result, "a repeated result is the same result")
            } else {
                finished.append(result)
            }
        }
        #expect(finished.count == count, "coordinator log:\n\(coordinator.log)")
        for result in finished {
            let index = result.workflowID.split(separator: "-").last!
            #expect(result.status == .completed, "\(result.workflowID): \(String(describing: result.error))")
            #expect(result.output?.text == kind.output(Int(index)!))
        }

        // The side-effect counter: the worker logs each activity it completes, with its
        // message id. Every step ran, and none ran twice.
        let completedRuns = worker.log.split(separator: "\n").filter { $0.contains("activity completed") }.compactMap { line -> String? in
            guard let range = line.range(of: "message.id=") else { return nil }
            return String(line[range.upperBound...].prefix { !$0.isWhitespace })
        }
        #expect(completedRuns.count == count * steps, "each of the \(count * steps) steps completes once")
        #expect(Set(completedRuns).count == completedRuns.count, "a step ran twice: \(Dictionary(grouping: completedRuns, by: { $0 }).filter { $0.value.count > 1 }.keys)")

        reader.cancel()
        results.cancel()
        worker.signal(SIGTERM)
        coordinator.signal(SIGTERM)
        _ = try await worker.waitForExit(timeout: .seconds(30))
        _ = try await coordinator.waitForExit(timeout: .seconds(30))
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
        await requester.close()
        try? FileManager.default.removeItem(at: folder)
    }

    @Test("signals, updates and cancels sent while the coordinator is killed three times each take effect once: 500 signals and 100 updates to 50 echo_signals workflows, half of them continuing as new every 3 echoes, and 10 sleeping echo_chains cancelled")
    func commandsKilledThreeTimes() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("killed-signals"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-killed-signals-\(UUID().uuidString.prefix(8))")
        let requester = try await TestBroker.connect(name: "test killed signals")
        try await requester.declare(names.topology)
        let answers = TestBroker.uniqueName("signal-answers")
        try await requester.declare(Topology(queues: [.init(name: answers, durable: false, exclusive: true, autoDelete: true)]))
        let common = ["--topology-prefix", names.prefix!, "--metrics-port", "off", "--amqp-url", TestBroker.url]
        let worker = try FlowProcess(["worker", "default", "--data-dir", folder.appendingPathComponent("worker").path, "--concurrency", "8"] + common)
        let coordinatorArguments = ["coordinator", "--data-dir", folder.appendingPathComponent("coordinator").path] + common
        let coordinator = Mutex(try FlowProcess(coordinatorArguments))

        // Every accepted answer, by correlation id: a command counts as sent once the
        // coordinator accepted it, and a sender whose answer was lost with a killed
        // coordinator (or whose update found the workflow between runs) sends it again
        // under the same id, which must count once.
        let accepted = Collected<String>()
        let consumer = try await requester.consume(queue: answers, prefetch: 100)
        let reader = Task {
            for try await delivery in consumer {
                try await delivery.ack()
                guard let id = delivery.properties.correlationID else { continue }
                if delivery.properties.type == WorkflowUpdateResult.messageType {
                    if let result = try? FlowJSON.decode(WorkflowUpdateResult.self, from: delivery.body), result.accepted { await accepted.add(id) }
                } else if let answer = try? FlowJSON.decode(CommandAnswer.self, from: delivery.body), answer.accepted {
                    await accepted.add(id)
                }
            }
        }
        func send<Body: Encodable>(_ kind: WorkflowCommand.Kind, _ body: Body, id: String) async throws {
            let properties = AMQPProperties(
                contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: id, replyTo: answers, messageID: id, type: kind.rawValue
            )
            let deadline = ContinuousClock.now + .seconds(180)
            while !(await accepted.all.contains(id)) {
                try await requester.publish(AMQPMessage(routingKey: names.name(Topology.workflowCommandQueue), properties: properties, body: Array(try FlowJSON.encode(body))))
                let sentAt = ContinuousClock.now
                while !(await accepted.all.contains(id)), ContinuousClock.now - sentAt < .seconds(3) { try await Task.sleep(for: .milliseconds(20)) }
                guard ContinuousClock.now < deadline else { throw HarnessError("\(kind.rawValue) \(id) was never accepted") }
            }
        }
        func signal(_ workflowID: String, _ name: String, _ input: String, id: String, start: EchoSignalsStart?) async throws {
            let body = WorkflowCommand.Signal(
                workflowID: workflowID, name: name, input: try JSONText(encoding: input), signalID: id,
                startWorkflow: start == nil ? nil : "echo_signals", startInput: try start.map { try JSONText(encoding: $0) }
            )
            try await send(.signal, body, id: id)
        }
        struct EchoSignalsStart: Encodable { var continueAfter: Int? }

        // Ten workflows that sleep ten minutes after their first step: cancelled while the
        // coordinator is killed.
        let sleepers = (0..<10).map { "sleeper-\($0)" }
        for workflowID in sleepers {
            let start = WorkflowCommand.Start(workflow: "echo_chain", workflowID: workflowID, input: try JSONText(encoding: ["text": .string(workflowID), "steps": .int(2), "pause_seconds": .int(600)] as [String: JSONValue]))
            // A start's answer is the workflow's result, at its end: sent once, not waited for.
            let properties = AMQPProperties(contentType: FlowProtocol.contentType, deliveryMode: 2, messageID: "start-\(workflowID)", type: WorkflowCommand.Kind.start.rawValue)
            try await requester.publish(AMQPMessage(routingKey: names.name(Topology.workflowCommandQueue), properties: properties, body: Array(try FlowJSON.encode(start))))
        }
        let workflows = (0..<50).map { "signalled-\($0)" }
        let signals = 10
        let updatedAfter = [3, 7]
        // The senders, each in order; the killer, three times while they send.
        let killer = Task {
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(1500))
                let doomed = coordinator.withLock { $0 }
                doomed.signal(SIGKILL)
                _ = try await doomed.waitForExit(timeout: .seconds(10))
                let restarted = try FlowProcess(coordinatorArguments)
                coordinator.withLock { $0 = restarted }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (number, workflowID) in workflows.enumerated() {
                group.addTask {
                    let start = EchoSignalsStart(continueAfter: number.isMultiple(of: 2) ? 3 : nil)
                    for index in 0..<signals {
                        try await signal(workflowID, "add", "\(workflowID) #\(index)", id: "\(workflowID)/\(index)", start: index == 0 ? start : nil)
                        if let note = updatedAfter.firstIndex(of: index) {
                            let update = WorkflowCommand.Update(workflowID: workflowID, name: "note", input: try JSONText(encoding: "\(workflowID) u\(note)"), updateID: "\(workflowID)/u\(note)")
                            try await send(.update, update, id: "\(workflowID)/u\(note)")
                        }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    try await signal(workflowID, "done", "", id: "\(workflowID)/done", start: nil)
                }
            }
            for workflowID in sleepers {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(1000))
                    try await send(.cancel, WorkflowCommand.Cancel(workflowID: workflowID, reason: "killed test"), id: "cancel-\(workflowID)")
                }
            }
            try await group.waitForAll()
        }
        try await killer.value

        let store = ["--data-dir", folder.appendingPathComponent("coordinator").path]
        func ended(_ workflowID: String) async throws -> WorkflowHistory {
            let deadline = ContinuousClock.now + .seconds(90)
            while true {
                let shown = try await flow(["workflow", "show", workflowID, "--json"] + store)
                let history = try FlowJSON.decode(WorkflowHistory.self, from: shown.standardOutput)
                if history.events.last?.event.isTerminal == true || ContinuousClock.now > deadline { return history }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        for (number, workflowID) in workflows.enumerated() {
            let history = try await ended(workflowID)
            guard case .workflowCompleted(let output)? = history.events.last?.event else {
                Issue.record("\(workflowID) did not complete: \(history.events.map(\.event.kind))\ncoordinator:\n\(coordinator.withLock { $0.log })")
                continue
            }
            let texts = try output.decode([String].self)
            // Each signal's echo once, in the order sent; each note once, in the order sent.
            // (A note may come before the echo of the signal sent just before it.)
            #expect(texts.filter { !$0.hasPrefix("note: ") } == (0..<signals).map { "\(workflowID) #\($0)" }, "\(workflowID): \(texts)")
            #expect(texts.filter { $0.hasPrefix("note: ") } == ["note: \(workflowID) u0", "note: \(workflowID) u1"], "\(workflowID): \(texts)")
            let shown = try await flow(["workflow", "show", workflowID] + store)
            if number.isMultiple(of: 2) {
                #expect(shown.standardOutput.contains("run       4 of 4"), "ten echoes, three a run: \(shown.standardOutput.prefix(600))")
            }
        }
        for workflowID in sleepers {
            let history = try await ended(workflowID)
            #expect(history.events.last?.event.kind == "workflow_cancelled", "\(workflowID): \(history.events.map(\.event.kind))")
        }
        let completedRuns = worker.log.split(separator: "\n").filter { $0.contains("activity completed") }.compactMap { line -> String? in
            guard let range = line.range(of: "message.id=") else { return nil }
            return String(line[range.upperBound...].prefix { !$0.isWhitespace })
        }
        let echoes = completedRuns.filter { $0.hasPrefix("signalled-") }
        #expect(echoes.count == workflows.count * signals && Set(echoes).count == echoes.count, "each signal's echo ran once")

        reader.cancel()
        consumer.cancel()
        worker.signal(SIGTERM)
        let last = coordinator.withLock { $0 }
        last.signal(SIGTERM)
        _ = try await worker.waitForExit(timeout: .seconds(30))
        _ = try await last.waitForExit(timeout: .seconds(30))
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
        await requester.close()
        try? FileManager.default.removeItem(at: folder)
    }

    func flow(_ arguments: [String]) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, arguments) })
            }
        }
    }
}

@Suite("flow workflow and flow schedule against running processes", .serialized)
struct WorkflowCommandLineTests {
    func flow(_ arguments: [String]) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, arguments) })
            }
        }
    }

    @Test("start --wait prints the output; show tells the timeline; list, cancel, schedules and /metrics answer truthfully")
    func commandLine() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("cli"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-cli-\(UUID().uuidString.prefix(8))")
        let requester = try await TestBroker.connect(name: "test workflow cli")
        try await requester.declare(names.topology)
        let broker = ["--topology-prefix", names.prefix!, "--amqp-url", TestBroker.url]
        let store = ["--data-dir", folder.appendingPathComponent("coordinator").path]
        let worker = try FlowProcess(["worker", "default", "--data-dir", folder.appendingPathComponent("worker").path, "--metrics-port", "off"] + broker)
        let coordinator = try FlowProcess(["coordinator", "--metrics-port", "0"] + store + broker)
        let metricsPort = try #require(try await coordinator.servingPort(), "the coordinator never served health:\n\(coordinator.log)")

        let started = try await flow(["workflow", "start", "echo_chain", "--input", #"{"text": "cli", "steps": 2}"#, "--id", "cli-1", "--wait", "--timeout", "60"] + broker)
        #expect(started.status == 0, "\(started.standardError)\ncoordinator:\n\(coordinator.log)")
        #expect(started.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"steps":2,"text":"cli"}"#)

        let shown = try await flow(["workflow", "show", "cli-1"] + store)
        #expect(shown.status == 0, "\(shown.standardError)")
        #expect(shown.standardOutput.contains("status    completed"))
        #expect(shown.standardOutput.components(separatedBy: "activity completed").count - 1 == 2)
        #expect(shown.standardOutput.contains("workflow completed"))

        // The journal as a history file, from the store and over the broker alike, and the
        // replay check on it: this build's echo_chain replays it; a tampered one diverges.
        let json = try await flow(["workflow", "show", "cli-1", "--json"] + store)
        #expect(json.status == 0, "\(json.standardError)")
        #expect(try await flow(["workflow", "show", "cli-1", "--json"] + broker).standardOutput == json.standardOutput)
        var history = try FlowJSON.decode(WorkflowHistory.self, from: json.standardOutput)
        #expect(history.workflow == "echo_chain" && history.events.count == 6, "started, 2 × (scheduled, completed), completed: \(json.standardOutput)")
        let historyFile = folder.appendingPathComponent("cli-1.json")
        try json.standardOutput.write(to: historyFile, atomically: true, encoding: .utf8)
        let check = try await flow(["workflow", "replay-check", "--workflow", "echo_chain", "--history", historyFile.path])
        #expect(check.status == 0, "\(check.standardOutput)\(check.standardError)")
        #expect(check.standardOutput.contains("cli-1 (echo_chain): replays (2 commands)"), "\(check.standardOutput)")
        let fromStore = try await flow(["workflow", "replay-check", "--workflow", "echo_chain", "--from-store", "--all"] + store)
        #expect(fromStore.status == 0 && fromStore.standardOutput.contains("1 of 1 runs of echo_chain replay"), "\(fromStore.standardOutput)\(fromStore.standardError)")
        for (index, entry) in history.events.enumerated() {
            if case .activityScheduled(var scheduled) = entry.event, scheduled.position == 1 {
                scheduled.activity = "shout"
                history.events[index].event = .activityScheduled(scheduled)
            }
        }
        let tamperedFile = folder.appendingPathComponent("cli-1-tampered.json")
        try FlowJSON.encodeText(history, pretty: true).write(to: tamperedFile, atomically: true, encoding: .utf8)
        let diverges = try await flow(["workflow", "replay-check", "--workflow", "echo_chain", "--history", historyFile.path, "--history", tamperedFile.path])
        #expect(diverges.status == 1)
        #expect(diverges.standardOutput.contains("DIVERGES") && diverges.standardOutput.contains("at position 1 its journal records activity shout, but the code asked for activity echo"), "\(diverges.standardOutput)")
        #expect(diverges.standardOutput.contains("1 of 2 runs of echo_chain replay; 1 diverge"), "\(diverges.standardOutput)")

        let listed = try await flow(["workflow", "list", "--status", "completed"] + store)
        #expect(listed.standardOutput.contains("cli-1  echo_chain  completed"))
        let none = try await flow(["workflow", "list", "--status", "parked"] + store)
        #expect(none.standardOutput.contains("no workflows"))

        // Without --data-dir the coordinator answers over the broker, with the same text.
        let shownRemotely = try await flow(["workflow", "show", "cli-1"] + broker)
        #expect(shownRemotely.status == 0, "\(shownRemotely.standardError)")
        #expect(shownRemotely.standardOutput == shown.standardOutput)
        let listedRemotely = try await flow(["workflow", "list", "--status", "completed"] + broker)
        #expect(listedRemotely.standardOutput == listed.standardOutput)
        let unknownRemotely = try await flow(["workflow", "show", "no-such-workflow"] + broker)
        #expect(unknownRemotely.status != 0)
        #expect(unknownRemotely.standardError.contains("no workflow has id no-such-workflow"))

        let again = try await flow(["workflow", "start", "echo_chain", "--input", #"{"text": "other"}"#, "--id", "cli-1", "--wait", "--timeout", "60"] + broker)
        #expect(again.standardOutput.contains(#""text":"cli""#), "a second start of cli-1 answers with the first run's result")

        let cancelUnknown = try await flow(["workflow", "cancel", "no-such-workflow"] + broker)
        #expect(cancelUnknown.status == 1)
        #expect(cancelUnknown.standardOutput.contains("no workflow has id no-such-workflow"))
        // Its own query, over the broker and from the store with no coordinator asked: the
        // ended workflow's code is replayed from its journal, and answers the same.
        let queried = try await flow(["workflow", "query", "cli-1", "progress"] + broker)
        #expect(queried.status == 0, "\(queried.standardError)")
        #expect(queried.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"steps":2,"steps_done":2,"text":"cli"}"#, "\(queried.standardOutput)")
        let queriedFromStore = try await flow(["workflow", "query", "cli-1", "progress"] + store)
        #expect(queriedFromStore.standardOutput == queried.standardOutput, "\(queriedFromStore.standardError)")
        let unknownQuery = try await flow(["workflow", "query", "cli-1", "nothing"] + broker)
        #expect(unknownQuery.status != 0 && unknownQuery.standardError.contains("answers no query named nothing (it answers: progress)"), "\(unknownQuery.standardError)")
        // A signal is recorded only for a workflow that is open: cli-1 has ended, and no
        // workflow has the other id; each refusal says why and exits 1.
        let signalEnded = try await flow(["workflow", "signal", "cli-1", "approve_training", "--input", #"{"approver": "ada"}"#] + broker)
        #expect(signalEnded.status == 1 && signalEnded.standardOutput.contains("workflow cli-1 has ended (completed)"), "\(signalEnded.standardOutput)")
        let signalNobody = try await flow(["workflow", "signal", "no-such-workflow", "approve_training"] + broker)
        #expect(signalNobody.status == 1 && signalNobody.standardOutput.contains("start_workflow"), "\(signalNobody.standardOutput)")
        let updateEnded = try await flow(["workflow", "update", "cli-1", "set_deadline", "--input", #"{"days": 3}"#] + broker)
        #expect(updateEnded.status == 1 && updateEnded.standardOutput.contains("workflow cli-1 has ended (completed)"), "\(updateEnded.standardOutput) \(updateEnded.standardError)")
        let badSignalInput = try await flow(["workflow", "signal", "cli-1", "approve_training", "--input", "{not json"] + broker)
        #expect(badSignalInput.status != 0 && badSignalInput.standardError.contains("JSON"), "\(badSignalInput.standardError)")

        let added = try await flow(["schedule", "add", "nightly", "--cron", "0 3 * * *", "--workflow", "echo_chain", "--input", #"{"text": "night"}"#] + broker)
        #expect(added.status == 0, "\(added.standardError)")
        #expect(added.standardOutput.contains("T03:00:00Z"))
        let schedules = try await flow(["schedule", "list"] + store)
        #expect(schedules.standardOutput.contains(#"nightly  echo_chain  cron "0 3 * * *""#))
        let badCron = try await flow(["schedule", "add", "broken", "--cron", "0 25 * * *", "--workflow", "echo_chain"] + broker)
        #expect(badCron.status == 1)
        #expect(badCron.standardOutput.contains("hour"))
        let removed = try await flow(["schedule", "remove", "nightly"] + broker)
        #expect(removed.standardOutput.contains("schedule nightly removed"))

        let metrics = try await flow(["status"] + broker)
        #expect(metrics.standardOutput.contains(names.name(Topology.workflowCommandQueue)))
        let scraped = try await ProcessRunner.run("/usr/bin/curl", ["-fsS", "http://127.0.0.1:\(metricsPort)/metrics"])
        let exposition = PrometheusText(scraped.standardOutput)
        #expect(exposition.sum("flow_coordinator_events_total", matching: ["event": "workflow_completed"]) == 1)
        #expect(exposition.sum("flow_coordinator_events_total", matching: ["event": "duplicate_start"]) == 1)
        #expect(exposition.types["flow_workflow_starts_total"] == "counter")
        #expect(exposition.types["flow_workflow_duration_seconds"] == "histogram")
        #expect(exposition.types["flow_workflows_parked"] == "gauge")
        let echoChain = ["flow_workflow_name": "echo_chain"]
        #expect(exposition.sum("flow_workflow_starts_total", matching: echoChain) == 1)
        #expect(exposition.sum("flow_workflow_ends_total", matching: echoChain.merging(["flow_workflow_status": "completed"]) { $1 }) == 1)
        #expect(exposition.sum("flow_workflow_ends_total", matching: echoChain.merging(["flow_workflow_status": "failed"]) { $1 }) == 0)
        // One workflow of two echo steps.
        #expect(exposition.sum("flow_workflow_steps_count", matching: echoChain) == 1)
        #expect(exposition.sum("flow_workflow_steps_sum", matching: echoChain) == 2)
        #expect(exposition.sum("flow_step_duration_seconds_count", matching: ["flow_activity_name": "echo", "flow_outcome": "completed"]) == 2)
        #expect(exposition.sum("flow_coordinator_queue_lag_seconds_count", matching: ["messaging_destination_name": names.coordinatorReplyQueue]) >= 2)
        #expect(exposition.sum("flow_workflows_running") == 0)

        worker.signal(SIGTERM)
        coordinator.signal(SIGTERM)
        #expect(try await coordinator.waitForExit(timeout: .seconds(30)) == 0, "the coordinator should stop cleanly on SIGTERM:\n\(coordinator.log)")
        _ = try await worker.waitForExit(timeout: .seconds(30))
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
        await requester.close()
        try? FileManager.default.removeItem(at: folder)
    }

    @Test("cancel --where acts on each workflow the filter keeps, --dry-run only lists them, and the audit log names each; replay --where says what it found; reset runs cancelled workflows again from a command, one or many")
    func bulkRepair() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("bulk"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-bulk-\(UUID().uuidString.prefix(8))")
        let requester = try await TestBroker.connect(name: "test bulk repair")
        try await requester.declare(names.topology)
        let broker = ["--topology-prefix", names.prefix!, "--amqp-url", TestBroker.url]
        let worker = try FlowProcess(["worker", "default", "--data-dir", folder.appendingPathComponent("worker").path, "--metrics-port", "off"] + broker)
        let coordinator = try FlowProcess(["coordinator", "--metrics-port", "off", "--data-dir", folder.appendingPathComponent("coordinator").path] + broker)
        let audit = folder.appendingPathComponent("audit.jsonl")
        func flow(_ arguments: [String]) async throws -> ProcessOutput {
            try await self.flow(arguments)
        }
        func audited(_ arguments: [String]) async throws -> ProcessOutput {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try ProcessRunner.run("/usr/bin/env", ["FLOW_AUDIT_LOG=\(audit.path)", Repository.flowExecutable.path] + arguments) })
                }
            }
        }
        // Three that wait ten minutes after their first step, and one that is done at once.
        for index in 1...3 {
            let started = try await flow(["workflow", "start", "echo_chain", "--input", #"{"text": "slow", "steps": 2, "pause_seconds": 600}"#, "--id", "slow-\(index)"] + broker)
            #expect(started.status == 0, "\(started.standardError)")
        }
        let quick = try await flow(["workflow", "start", "echo_chain", "--input", #"{"text": "quick", "steps": 1}"#, "--id", "quick", "--wait", "--timeout", "60"] + broker)
        #expect(quick.status == 0, "\(quick.standardError)\n\(coordinator.log)")

        let filter = ["--where", "status = running AND name = echo_chain"]
        let dry = try await audited(["workflow", "cancel", "--dry-run", "--operator-name", "tester"] + filter + broker)
        #expect(dry.status == 0, "\(dry.standardError)")
        #expect(dry.standardOutput.contains("would cancel slow-1") && dry.standardOutput.contains("3 workflows would be acted on; nothing changed"), "\(dry.standardOutput)")
        #expect(!dry.standardOutput.contains("quick"))
        #expect(!FileManager.default.fileExists(atPath: audit.path), "a dry run writes no audit line")
        let signalled = try await audited(["workflow", "signal", "wake_up", "--input", #""now""#, "--signal-id", "bulk-1", "--operator-name", "tester"] + filter + broker)
        #expect(signalled.status == 0 && signalled.standardOutput.contains("3 of 3 done"), "\(signalled.standardOutput)\(signalled.standardError)")
        let again = try await audited(["workflow", "signal", "wake_up", "--input", #""now""#, "--signal-id", "bulk-1"] + filter + broker)
        #expect(again.standardOutput.contains("3 of 3 done") && again.standardOutput.contains("recorded once"), "sent again, each counts once: \(again.standardOutput)")
        let journal = try await flow(["workflow", "show", "slow-2", "--json"] + broker)
        #expect(journal.standardOutput.components(separatedBy: "signal_received").count == 2, "one signal recorded, once")
        try FileManager.default.removeItem(at: audit)
        let limited = try await audited(["workflow", "cancel", "--limit", "2", "--operator-name", "tester"] + filter + broker)
        #expect(limited.status == 0 && limited.standardOutput.contains("2 of 2 done"), "\(limited.standardOutput)\(limited.standardError)")
        let rest = try await audited(["workflow", "cancel", "--operator-name", "tester"] + filter + broker)
        #expect(rest.standardOutput.contains("1 of 1 done"), "\(rest.standardOutput)")
        for index in 1...3 {
            let shown = try await flow(["workflow", "show", "slow-\(index)"] + broker)
            #expect(shown.standardOutput.contains("status    cancelled"), "\(shown.standardOutput)")
        }
        let lines = try String(contentsOf: audit, encoding: .utf8).split(separator: "\n").map { try FlowJSON.decode([String: String].self, from: String($0)) }
        #expect(lines.map { $0["workflow_id"] ?? "" }.sorted() == ["slow-1", "slow-2", "slow-3"])
        #expect(lines.allSatisfy { line in
            let outcome = line["outcome"] ?? ""
            return line["action"] == "workflow cancel" && line["operator"] == "tester" && (outcome.contains("is being cancelled") || outcome.contains("was cancelled"))
        }, "\(lines)")
        let nothing = try await audited(["workflow", "cancel"] + filter + broker)
        #expect(nothing.standardOutput.contains("no workflow matches"))
        let replayed = try await audited(["workflow", "replay", "--where", "name = echo_chain"] + broker)
        #expect(replayed.standardOutput.contains("no workflow matches"), "only parked workflows are replayed: \(replayed.standardOutput)")
        let bad = try await flow(["workflow", "cancel", "--where", "pages >>= 3"] + broker)
        #expect(bad.status != 0 && bad.standardError.contains("character"), "\(bad.standardError)")
        let both = try await flow(["workflow", "cancel", "slow-1", "--where", "name = x"] + broker)
        #expect(both.status != 0 && both.standardError.contains("not both"))

        // Reset: the cancelled workflows run again from their sleep (command 1), their
        // first step kept; the runs cancelled stay as they ended.
        let reset = try await audited(["workflow", "reset", "slow-1", "--to", "1", "--reason", "woke too early", "--operator-name", "tester"] + broker)
        #expect(reset.status == 0 && reset.standardOutput.contains("run 2 goes on from there (the run before is slow-1@run-1)"), "\(reset.standardOutput)\(reset.standardError)")
        let resetShown = try await flow(["workflow", "show", "slow-1"] + broker)
        #expect(resetShown.standardOutput.contains("status    running"), "\(resetShown.standardOutput)")
        #expect(resetShown.standardOutput.contains("run       2 of 2: slow-1@run-1 cancelled, slow-1 running"), "\(resetShown.standardOutput)")
        let cancelledFilter = ["--where", "status = cancelled AND name = echo_chain"]
        let resetDry = try await audited(["workflow", "reset", "--to", "1", "--dry-run"] + cancelledFilter + broker)
        #expect(resetDry.standardOutput.contains("would reset slow-2") && !resetDry.standardOutput.contains("slow-1@run-1"), "a run kept as history is not reset: \(resetDry.standardOutput)")
        let resetMany = try await audited(["workflow", "reset", "--to", "1", "--operator-name", "tester"] + cancelledFilter + broker)
        #expect(resetMany.standardOutput.contains("2 of 2 done"), "\(resetMany.standardOutput)")
        let resetOld = try await flow(["workflow", "reset", "slow-1@run-1", "--to", "0"] + broker)
        #expect(resetOld.status == 1 && resetOld.standardOutput.contains("which a later run replaced: reset slow-1"), "\(resetOld.standardOutput)")
        for index in 2...3 {
            let shown = try await flow(["workflow", "show", "slow-\(index)"] + broker)
            #expect(shown.standardOutput.contains("status    running") && shown.standardOutput.contains("run       2 of 2"), "\(shown.standardOutput)")
        }
        let resetLines = try String(contentsOf: audit, encoding: .utf8).split(separator: "\n").filter { $0.contains("workflow reset") }
        #expect(resetLines.count == 3, "one audit line per reset: \(resetLines)")
        let tooFar = try await flow(["workflow", "reset", "quick", "--to", "5"] + broker)
        #expect(tooFar.status == 1 && tooFar.standardOutput.contains("there is no command 5 to reset to: the workflow issued commands 0 to 0"), "\(tooFar.standardOutput)\(tooFar.standardError)")

        worker.signal(SIGTERM)
        coordinator.signal(SIGTERM)
        _ = try await coordinator.waitForExit(timeout: .seconds(30))
        _ = try await worker.waitForExit(timeout: .seconds(30))
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
        await requester.close()
        try? FileManager.default.removeItem(at: folder)
    }
}

@Suite("flow status")
struct StatusCommandTests {
    @Test("flow status shows ready and unacknowledged messages and consumers of each queue")
    func unacknowledged() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("status"))
        let requester = try await TestBroker.connect(name: "test status")
        try await requester.declare(names.topology)
        for index in 0..<2 {
            try await requester.publish(AMQPMessage(
                exchange: names.activitiesExchange, routingKey: names.queue(.default),
                properties: AMQPProperties(contentType: FlowProtocol.contentType, deliveryMode: 2, messageID: "held-\(index)", type: "echo"), body: Array("{}".utf8)
            ))
        }
        // One delivery held, not acknowledged; the other waits behind the prefetch of 1.
        let holder = try await requester.consume(queue: names.queue(.default), prefetch: 1)
        var iterator = holder.makeAsyncIterator()
        _ = try await iterator.next()

        // The management API refreshes its counts every few seconds.
        var row = ""
        let deadline = ContinuousClock.now + .seconds(40)
        while ContinuousClock.now < deadline {
            let output = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessOutput, any Error>) in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, ["status", "--topology-prefix", names.prefix!, "--amqp-url", TestBroker.url]) })
                }
            }
            #expect(output.status == 0, "\(output.standardError)")
            #expect(output.standardOutput.contains("unacked"))
            row = output.standardOutput.split(separator: "\n").first { $0.hasPrefix(names.queue(.default) + " ") }.map(String.init) ?? ""
            if row.split(separator: " ").suffix(3) == ["1", "1", "1"] { break }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(row.split(separator: " ").suffix(3) == ["1", "1", "1"], "ready 1, unacked 1, consumers 1; got: \(row)")
        holder.cancel()
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
        await requester.close()
    }
}

/// A JSON value for building inputs in tests.
enum JSONValue: Encodable {
    case string(String)
    case int(Int)

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        }
    }
}
