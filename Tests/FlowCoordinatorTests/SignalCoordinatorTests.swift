import FlowCoordinator
import FlowCore
import FlowTesting
import FlowTransport
import Foundation
import Testing

/// Signals through the coordinator: `flow.workflow.signal` commands on the in-memory broker,
/// recorded before they are answered, received once each and in order, across a restart.
@Suite("signals through the coordinator")
struct SignalCoordinatorTests {
    let counter = RunCounter()
    let fixed = Switch()

    func harness(_ broker: InMemoryBroker, inMemoryStore: Bool = false) async throws -> CoordinatorHarness {
        try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: fixed),
            transports: .inMemory(broker), clock: ManualWallClock(), inMemoryStore: inMemoryStore
        )
    }

    /// Sends a signal command and returns the coordinator's answer.
    func signal(_ harness: CoordinatorHarness, _ broker: InMemoryBroker, _ body: WorkflowCommand.Signal, answers: String) async throws -> CommandAnswer {
        let before = broker.messages(in: answers).count
        try await harness.sendCommand(.signal, body, replyTo: answers)
        try await waitUntil { broker.messages(in: answers).count > before }
        return try FlowJSON.decode(CommandAnswer.self, from: Data(broker.messages(in: answers)[before].body))
    }

    @Test("signals reach the code in order across a restart, a signal sent twice counts once, and one for an ended workflow is refused", arguments: ["SQLite", "in memory"])
    func signalsAcrossARestart(store: String) async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker, inMemoryStore: store == "in memory")
        let answers = "signal-answers"
        try await harness.requester.declare(Topology(queues: [.init(name: answers)]))
        try await harness.coordinator.start(workflow: NudgedWorkflow.name, id: "nudged", input: try JSONText(encoding: CountedEcho.Payload(value: "-")), recipient: nil)

        let first = try await signal(harness, broker, .init(workflowID: "nudged", name: Nudge.name, input: try JSONText(encoding: "one"), signalID: "s1"), answers: answers)
        #expect(first.accepted, "\(first.message)")
        // The first signal's step runs; then the coordinator restarts.
        try await waitUntil { counter.all.values.reduce(0, +) == 1 }
        await harness.stopCoordinator()
        harness.startCoordinator()
        let second = try await signal(harness, broker, .init(workflowID: "nudged", name: Nudge.name, input: try JSONText(encoding: "two"), signalID: "s2"), answers: answers)
        #expect(second.accepted, "\(second.message)")
        let record = try await harness.waitFor("nudged", [.completed, .failed], timeout: .seconds(60))
        #expect(try record.output?.decode([String].self) == ["one", "two"])
        #expect(counter.all.values.allSatisfy { $0 == 1 }, "the step the first signal led to ran once: \(counter.all)")

        let again = try await signal(harness, broker, .init(workflowID: "nudged", name: Nudge.name, input: try JSONText(encoding: "two"), signalID: "s2"), answers: answers)
        #expect(!again.accepted && again.message.contains("has ended"), "\(again.message)")
        let journal = try await harness.store.checkedJournal("nudged")
        let signals = journal.entries.compactMap { if case .signalReceived(let id, _, let input) = $0.event { "\(id)=\(input.text)" } else { nil } }
        #expect(signals == [#"s1="one""#, #"s2="two""#])
        #expect(try await harness.store.history(workflowID: "nudged").filter { $0.kind == .signalReceived }.count == 2)
        await harness.shutdown()
    }

    @Test("a signal sent again under its id while the workflow waits is recorded once")
    func duplicateSignal() async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker)
        let answers = "signal-answers"
        try await harness.requester.declare(Topology(queues: [.init(name: answers)]))
        try await harness.coordinator.start(workflow: NudgedWorkflow.name, id: "twice", input: try JSONText(encoding: CountedEcho.Payload(value: "-")), recipient: nil)
        for _ in 0..<3 {
            let answer = try await signal(harness, broker, .init(workflowID: "twice", name: Nudge.name, input: try JSONText(encoding: "one"), signalID: "same"), answers: answers)
            #expect(answer.accepted, "\(answer.message)")
        }
        #expect(harness.coordinator.statistics.count(.duplicateSignal) == 2)
        #expect(harness.coordinator.statistics.count(.signalReceived) == 1)
        try await waitUntil { counter.all.values.reduce(0, +) == 1 }
        #expect(try await harness.store.workflow(id: "twice")?.status == .running, "it waits for a second, different signal")
        await harness.shutdown()
    }

    @Test("signal-with-start starts the workflow that does not exist and hands it the signal; a signal for no workflow is refused with what to do")
    func signalWithStart() async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker)
        let answers = "signal-answers"
        try await harness.requester.declare(Topology(queues: [.init(name: answers)]))
        let refused = try await signal(harness, broker, .init(workflowID: "nobody", name: Nudge.name), answers: answers)
        #expect(!refused.accepted && refused.message.contains("start_workflow"), "\(refused.message)")
        let input = try JSONText(encoding: CountedEcho.Payload(value: "-"))
        for word in ["one", "two"] {
            let answer = try await signal(
                harness, broker, .init(workflowID: "started", name: Nudge.name, input: try JSONText(encoding: word), startWorkflow: NudgedWorkflow.name, startInput: input),
                answers: answers
            )
            #expect(answer.accepted, "\(answer.message)")
        }
        let record = try await harness.waitFor("started", [.completed, .failed], timeout: .seconds(60))
        #expect(try record.output?.decode([String].self) == ["one", "two"])
        #expect(try await harness.store.checkedJournal("started").entries.filter { $0.event.kind == "workflow_started" }.count == 1)
        await harness.shutdown()
    }

    @Test("500 signals to 50 workflows, the coordinator crashing three times on the way: each workflow receives exactly its signals, in order")
    func signalsSurviveCrashes() async throws {
        let broker = InMemoryBroker()
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: fixed),
            transports: .inMemory(broker), clock: ManualWallClock(), startsCoordinator: false
        )
        let input = try JSONText(encoding: CountedEcho.Payload(value: "-"))
        let ids = (0..<50).map { "collect-\($0)" }
        // Every command is in the queue before any coordinator runs: 50 starts (by
        // signal-with-start), 500 signals, 50 stops, each with its own signal id.
        for round in 0...10 {
            for id in ids {
                let word = round == 10 ? "stop" : "\(id)-\(round)"
                try await harness.sendCommand(
                    .signal,
                    WorkflowCommand.Signal(workflowID: id, name: Nudge.name, input: try JSONText(encoding: word), signalID: "\(id)#\(round)", startWorkflow: CollectingWorkflow.name, startInput: input)
                )
            }
        }
        for crash in 1...3 {
            let doomed = broker.connect(name: "crashing coordinator \(crash)")
            let crashing = CrashingStore(harness.store, writesBeforeCrash: 150 * crash) { doomed.close() }
            harness.startCoordinator(store: crashing, transport: doomed)
            try await waitUntil { crashing.crashed }
            await harness.stopCoordinator()
        }
        harness.startCoordinator(transport: broker.connect(name: "coordinator after the crashes"))
        for id in ids {
            let record = try await harness.waitFor(id, [.completed, .failed, .cancelled], timeout: .seconds(120))
            #expect(record.status == .completed, "\(id): \(String(describing: record.error))")
            #expect(try record.output?.decode([String].self) == (0..<10).map { "\(id)-\($0)" }, "\(id) received each of its signals once, in order")
            let journal = try await harness.store.checkedJournal(id)
            #expect(journal.signalIDs.count == 11)
        }
        await harness.shutdown()
    }

    @Test("a query answers from the running workflow's state, from a replay once it ended, and says which queries exist when asked another; it records nothing")
    func queries() async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker)
        let answers = "query-answers"
        try await harness.requester.declare(Topology(queues: [.init(name: answers), .init(name: "signal-answers-q")]))
        func ask(_ workflowID: String, _ name: String) async throws -> AMQPMessage {
            let before = broker.messages(in: answers).count
            try await harness.sendQuery(.workflowState, WorkflowQuery.Ask(workflowID: workflowID, name: name), replyTo: answers)
            try await waitUntil { broker.messages(in: answers).count > before }
            return broker.messages(in: answers)[before]
        }
        func words(_ message: AMQPMessage) throws -> [String]? {
            guard message.properties.type == WorkflowQuery.answerType else { return nil }
            return try FlowJSON.decode(WorkflowQueryResult.self, from: Data(message.body)).output.decode([String].self)
        }
        try await harness.coordinator.start(workflow: NudgedWorkflow.name, id: "asked", input: try JSONText(encoding: CountedEcho.Payload(value: "-")), recipient: nil)
        #expect(try words(try await ask("asked", WordsSoFar.name)) == [])
        _ = try await signal(harness, broker, .init(workflowID: "asked", name: Nudge.name, input: try JSONText(encoding: "one"), signalID: "q1"), answers: "signal-answers-q")
        try await waitUntil { try words(try await ask("asked", WordsSoFar.name)) == ["one"] }
        let journalBefore = try await harness.store.journal(workflowID: "asked")
        _ = try await ask("asked", WordsSoFar.name)
        #expect(try await harness.store.journal(workflowID: "asked") == journalBefore, "a query records nothing")

        _ = try await signal(harness, broker, .init(workflowID: "asked", name: Nudge.name, input: try JSONText(encoding: "two"), signalID: "q2"), answers: "signal-answers-q")
        _ = try await harness.waitFor("asked", [.completed, .failed], timeout: .seconds(60))
        #expect(try words(try await ask("asked", WordsSoFar.name)) == ["one", "two"], "an ended workflow answers from a replay of its journal")

        let unknown = try await ask("asked", "no_such_query")
        let refusal = try FlowJSON.decode(CommandAnswer.self, from: Data(unknown.body))
        #expect(!refusal.accepted && refusal.message.contains("answers no query named no_such_query (it answers: words_so_far)"), "\(refusal.message)")
        let nobody = try FlowJSON.decode(CommandAnswer.self, from: Data(try await ask("nobody", WordsSoFar.name).body))
        #expect(!nobody.accepted && nobody.message.contains("no workflow has id nobody"), "\(nobody.message)")
        await harness.shutdown()
    }

    @Test("a signal handler's state and a condition on it carry across a restart: the condition holds after the second signal, sent to the new coordinator", arguments: ["SQLite", "in memory"])
    func conditionAcrossARestart(store: String) async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker, inMemoryStore: store == "in memory")
        let answers = "signal-answers"
        try await harness.requester.declare(Topology(queues: [.init(name: answers)]))
        try await harness.coordinator.start(workflow: HandlingWorkflow.name, id: "handled", input: try JSONText(encoding: CountedEcho.Payload(value: "x")), recipient: nil)
        _ = try await signal(harness, broker, .init(workflowID: "handled", name: Nudge.name, input: try JSONText(encoding: "one"), signalID: "h1"), answers: answers)
        try await waitUntil { counter.all.values.reduce(0, +) == 1 }
        await harness.stopCoordinator()
        harness.startCoordinator()
        #expect(try await harness.coordinator.query(workflowID: "handled", name: WordsSoFar.name).decode([String].self) == ["one"], "the handler's state, rebuilt by the replay")
        _ = try await signal(harness, broker, .init(workflowID: "handled", name: Nudge.name, input: try JSONText(encoding: "two"), signalID: "h2"), answers: answers)
        let record = try await harness.waitFor("handled", [.completed, .failed], timeout: .seconds(60))
        #expect(try record.output?.decode([String].self) == ["x", "one", "two"])
        #expect(counter.all.values.allSatisfy { $0 == 1 })
        await harness.shutdown()
    }

    @Test("an update is validated, recorded, applied and answered; a rejected one leaves no trace, one sent again answers the same, and its change outlives a restart", arguments: ["SQLite", "in memory"])
    func updates(store: String) async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker, inMemoryStore: store == "in memory")
        let answers = "update-answers"
        try await harness.requester.declare(Topology(queues: [.init(name: answers), .init(name: "signal-answers")]))
        func update(_ workflowID: String, days: Int, id: String, start: Bool = false) async throws -> WorkflowUpdateResult {
            let before = broker.messages(in: answers).count
            let body = WorkflowCommand.Update(
                workflowID: workflowID, name: SetDeadline.name, input: try JSONText(encoding: SetDeadline.Input(days: days)), updateID: id,
                startWorkflow: start ? DeadlineWorkflow.name : nil, startInput: start ? try JSONText(encoding: CountedEcho.Payload(value: "-")) : nil
            )
            try await harness.sendCommand(.update, body, replyTo: answers)
            try await waitUntil { broker.messages(in: answers).count > before }
            let message = broker.messages(in: answers)[before]
            #expect(message.properties.type == WorkflowUpdateResult.messageType)
            return try FlowJSON.decode(WorkflowUpdateResult.self, from: Data(message.body))
        }
        func updateEvents(_ id: String) async throws -> [String] {
            try await harness.store.journal(workflowID: id).map(\.event.kind).filter { $0.hasPrefix("update_") }
        }
        try await harness.coordinator.start(workflow: DeadlineWorkflow.name, id: "dated", input: try JSONText(encoding: CountedEcho.Payload(value: "-")), recipient: nil)

        let rejected = try await update("dated", days: 0, id: "u0")
        #expect(!rejected.accepted && rejected.error?.message.contains("a deadline is at least 1 day, not 0") == true, "\(String(describing: rejected.error))")
        #expect(try await updateEvents("dated").isEmpty, "a rejected update leaves no trace")

        let applied = try await update("dated", days: 5, id: "u1")
        let fiveDays = try JSONText(encoding: "deadline set to 5 days")
        #expect(applied.accepted && applied.output == fiveDays, "\(applied)")
        let again = try await update("dated", days: 9, id: "u1")
        #expect(again.accepted && again.output == applied.output, "the same id answers the first result")
        #expect(try await updateEvents("dated") == ["update_accepted", "update_completed"])
        #expect(try await harness.coordinator.query(workflowID: "dated", name: Deadline.name).decode(Int.self) == 5)

        await harness.stopCoordinator()
        harness.startCoordinator()
        #expect(try await harness.coordinator.query(workflowID: "dated", name: Deadline.name).decode(Int.self) == 5, "the update's change, replayed")
        _ = try await signal(harness, broker, .init(workflowID: "dated", name: Nudge.name, input: try JSONText(encoding: "done"), signalID: "d1"), answers: "signal-answers")
        let record = try await harness.waitFor("dated", [.completed, .failed], timeout: .seconds(60))
        #expect(try record.output?.decode(Int.self) == 5)
        let ended = try await update("dated", days: 3, id: "u2")
        #expect(!ended.accepted && ended.error?.message.contains("has ended") == true)

        let started = try await update("fresh", days: 2, id: "u3", start: true)
        let twoDays = try JSONText(encoding: "deadline set to 2 days")
        #expect(started.accepted && started.output == twoDays, "update-with-start: \(started)")
        #expect(try await harness.coordinator.query(workflowID: "fresh", name: Deadline.name).decode(Int.self) == 2)
        await harness.shutdown()
    }
}
