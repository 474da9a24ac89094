import FlowCoordinator
import FlowCore
import FlowTesting
import Foundation
import Testing

/// An operator's pause: a paused workflow records and sends no new command; what its code
/// asks for meanwhile goes out when it is unpaused.
@Suite("pausing a workflow")
struct PauseTests {
    @Test("a paused workflow holds the step its code asks for, records the signal that led to it, and sends the step once unpaused", arguments: ["SQLite", "in memory"])
    func pauseHoldsCommands(store: String) async throws {
        let counter = RunCounter()
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: Switch()),
            transports: .inMemory(InMemoryBroker()), clock: ManualWallClock(), inMemoryStore: store == "in memory"
        )
        let coordinator = harness.coordinator
        try await coordinator.start(workflow: NudgedWorkflow.name, id: "held", input: try JSONText(encoding: CountedEcho.Payload(value: "-")), recipient: nil)
        #expect(try await coordinator.pause(workflowID: "held", reason: "the echo service is being upgraded") == true)
        #expect(try await coordinator.pause(workflowID: "held", reason: "again") == false, "paused already")
        _ = try await coordinator.signal(workflowID: "held", name: Nudge.name, input: try JSONText(encoding: "one"), signalID: "s1")
        try await waitUntil { try await harness.store.checkedJournal("held").signalIDs.contains("s1") }
        // The code took the signal and asked for counted_echo: nothing is recorded or sent.
        try await Task.sleep(for: .milliseconds(300))
        let paused = try await harness.store.checkedJournal("held")
        #expect(paused.commands.isEmpty && paused.pausedBecause == "the echo service is being upgraded")
        #expect(counter.all.isEmpty, "no step ran while paused: \(counter.all)")
        let described = try await WorkflowQueryAnswers(store: harness.store).describe(WorkflowQuery.Describe(workflowID: "held"))
        #expect(described.pausedBecause == "the echo service is being upgraded")

        #expect(try await coordinator.pause(workflowID: "held", reason: nil) == true)
        try await waitUntil { counter.all.keys.contains("held/counted_echo@0") }
        _ = try await coordinator.signal(workflowID: "held", name: Nudge.name, input: try JSONText(encoding: "two"), signalID: "s2")
        let record = try await harness.waitFor("held", [.completed, .failed])
        #expect(try record.output?.decode([String].self) == ["one", "two"])
        let kinds = try await harness.store.checkedJournal("held").entries.map(\.event.kind)
        #expect(kinds.prefix(5) == ["workflow_started", "workflow_paused", "signal_received", "workflow_unpaused", "activity_scheduled"], "\(kinds)")
        #expect(try await coordinator.pause(workflowID: "held", reason: "too late") == nil, "an ended workflow is not paused")
        #expect(try await coordinator.pause(workflowID: "nobody", reason: "x") == nil)
        let history = WorkflowHistory(workflowID: "held", workflow: NudgedWorkflow.name, events: try await harness.store.journal(workflowID: "held"))
        #expect(await WorkflowReplayer(registry: TestWorkflows.registry(), logger: TestBroker.logger).replay(history).replays)
        await harness.shutdown()
    }
}
