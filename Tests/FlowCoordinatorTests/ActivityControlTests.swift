import FlowCoordinator
import FlowCore
import FlowTesting
import Foundation
import Testing

/// An operator's pause, unpause and reset of one activity, on the in-memory transport with
/// a real in-process worker.
@Suite("pausing and resetting an activity")
struct ActivityControlTests {
    let counter = RunCounter()
    let open = Switch()

    func attempts() -> [String] { counter.all.keys.filter { $0.hasPrefix("gate ") }.sorted() }

    @Test("a paused activity's attempt stops and none is made; unpaused it is sent again under a new id, its attempts counting on from its last details; reset it starts from attempt 1", arguments: ["SQLite", "in memory"])
    func pauseUnpauseReset(store: String) async throws {
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: open),
            transports: .inMemory(InMemoryBroker()), clock: ManualWallClock(), inMemoryStore: store == "in memory"
        )
        try await harness.coordinator.start(workflow: GatedWorkflow.name, id: "gated", input: .emptyObject, recipient: nil)
        try await waitUntil { attempts() == ["gate gated/gate@0 attempt 1 from -"] }
        try await waitUntil { try await harness.store.step(messageID: "gated/gate@0")?.heartbeat != nil }

        let paused = try await harness.coordinator.controlActivity(workflowID: "gated", position: 0, .pause(reason: "the gate's owner is on leave"))
        #expect(paused.changed, "\(paused.message)")
        #expect(try await harness.coordinator.controlActivity(workflowID: "gated", position: 0, .pause(reason: "again")).changed == false)
        #expect(try await harness.store.step(messageID: "gated/gate@0")?.status == .paused)
        #expect(harness.coordinator.statistics.count(.activityCancelRequested) == 1)
        // The worker stops the attempt and answers Cancelled: the stop the pause asked for,
        // which the workflow does not see.
        try await waitUntil { harness.coordinator.statistics.count(.staleReply) >= 1 }
        #expect(try await harness.store.workflow(id: "gated")?.status == .running)
        #expect(attempts().count == 1, "no attempt while paused: \(attempts())")

        let unpaused = try await harness.coordinator.controlActivity(workflowID: "gated", position: 0, .unpause)
        #expect(unpaused.changed && unpaused.message.contains("gated/gate#2@0"), "\(unpaused.message)")
        try await waitUntil { attempts().contains(#"gate gated/gate#2@0 attempt 2 from {"attempt":1}"#) }

        let reset = try await harness.coordinator.controlActivity(workflowID: "gated", position: 0, .reset)
        #expect(reset.changed, "\(reset.message)")
        try await waitUntil { attempts().contains("gate gated/gate#3@0 attempt 1 from -") }
        open.turnOn()
        let record = try await harness.waitFor("gated", [.completed, .failed])
        #expect(try record.output?.decode(Int.self) == 1, "the reset attempt passed the gate")
        #expect(attempts().count == 3, "\(attempts())")

        let kinds = try await harness.store.checkedJournal("gated").entries.map(\.event.kind)
        #expect(kinds == ["workflow_started", "activity_scheduled", "activity_paused", "activity_resumed", "activity_resumed", "activity_completed", "workflow_completed"])
        let history = try await harness.store.history(workflowID: "gated").map(\.kind)
        #expect(history.contains(.activityPaused) && history.filter { $0 == .activityResumed }.count == 2)
        await #expect { try await harness.coordinator.controlActivity(workflowID: "gated", position: 0, .reset) } throws: { "\($0)".contains("has ended") }
        await harness.shutdown()
    }

    @Test("a pause and an unpause recorded while the workflow runs nowhere take effect when it runs again: the paused step is not sent on the restart, the unpaused one is, counting on")
    func acrossARestart() async throws {
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: open),
            transports: .inMemory(InMemoryBroker()), clock: ManualWallClock()
        )
        try await harness.coordinator.start(workflow: GatedWorkflow.name, id: "held", input: .emptyObject, recipient: nil)
        try await waitUntil { try await harness.store.step(messageID: "held/gate@0")?.heartbeat != nil }
        await harness.stopCoordinator()
        // The stopped coordinator records the pause in the store, and asks the worker to stop.
        #expect(try await harness.coordinator.controlActivity(workflowID: "held", position: 0, .pause(reason: "maintenance")).changed)
        harness.startCoordinator()
        try await waitUntil { harness.coordinator.statistics.count(.workflowResumed) >= 1 }
        try await Task.sleep(for: .milliseconds(200))
        #expect(attempts() == ["gate held/gate@0 attempt 1 from -"], "a paused step is not sent on a restart: \(attempts())")
        await harness.stopCoordinator()
        #expect(try await harness.coordinator.controlActivity(workflowID: "held", position: 0, .unpause).changed)
        harness.startCoordinator()
        try await waitUntil { attempts().contains(#"gate held/gate#2@0 attempt 2 from {"attempt":1}"#) }
        open.turnOn()
        #expect(try await harness.waitFor("held", [.completed, .failed]).output?.decode(Int.self) == 2)
        await harness.shutdown()
    }

    @Test("a control that names no waiting activity is refused, saying what the position holds")
    func refusals() async throws {
        var journal = WorkflowJournal()
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let events: [WorkflowEvent] = [
            .workflowStarted(name: "w", input: .emptyObject),
            .activityScheduled(.init(position: 0, activity: "echo", queue: "default-queue", input: .emptyObject, options: .init(), stepKey: "echo@0")),
            .activityCompleted(position: 0, attempt: 1, output: .null),
            .timerStarted(position: 1, key: "sleep@1", fireAt: at),
        ]
        for (index, event) in events.enumerated() { try journal.apply(JournalEntry(sequence: Int64(index + 1), epoch: 0, recordedAt: at, event: event)) }
        #expect(throws: ActivityFailure.self) { try WorkflowCoordinator.describeActivityControl(.reset, at: 0, in: journal) }
        #expect { try WorkflowCoordinator.describeActivityControl(.reset, at: 0, in: journal) } throws: { "\($0)".contains("has its outcome already") }
        #expect { try WorkflowCoordinator.describeActivityControl(.pause(reason: "x"), at: 1, in: journal) } throws: { "\($0)".contains("is no activity") }
        #expect { try WorkflowCoordinator.describeActivityControl(.unpause, at: 7, in: journal) } throws: { "\($0)".contains("has no command 7 (it has 2)") }
        #expect(WorkflowJournal.resentKey(after: "echo@3") == "echo#2@3")
        #expect(WorkflowJournal.resentKey(after: "run-2.echo#2@3") == "run-2.echo#3@3")
    }
}
