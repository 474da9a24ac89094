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
}
