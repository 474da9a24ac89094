import FlowCoordinator
import FlowCore
import FlowTesting
import Foundation
import Testing

/// Cancellation that reaches running activities, on the in-memory transport with a real
/// in-process worker: the worker's attempt is cancelled, shielded cleanup runs, and the
/// step ends cancelled.
@Suite("cancellation reaches running activities")
struct ActivityCancellationTests {
    let counter = RunCounter()

    func harness() async throws -> CoordinatorHarness {
        try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: Switch()),
            transports: .inMemory(InMemoryBroker()), clock: ManualWallClock()
        )
    }

    func started(_ key: String) -> Bool { counter.all.keys.contains { $0.hasPrefix("started ") && $0.contains(key) } }
    func cancelled(_ key: String) -> Bool { counter.all.keys.contains { $0.hasPrefix("cancelled ") && $0.contains(key) } }
    var cleanups: Int { counter.all.filter { $0.key.contains("counted_echo") }.values.reduce(0, +) }

    @Test("a cancelled workflow's running activity is cancelled on its worker, its shielded cleanup runs, and it ends cancelled")
    func cancelWithCleanup() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: CleanupWorkflow.name, id: "tidy", input: .emptyObject, recipient: nil)
        try await waitUntil { started("tidy/") }
        _ = try await harness.coordinator.cancel(workflowID: "tidy", reason: "no longer needed")
        let record = try await harness.waitFor("tidy", [.cancelled, .completed, .failed])
        #expect(record.status == .cancelled)
        try await waitUntil { cancelled("tidy/waits_for_cancel@0") }
        #expect(cleanups == 1, "the shielded cleanup ran once: \(counter.all)")
        let kinds = try await harness.store.checkedJournal("tidy").entries.map(\.event.kind)
        #expect(Array(kinds.prefix(3)) == ["workflow_started", "activity_scheduled", "cancel_requested"])
        #expect(kinds.contains("activity_completed") && kinds.last == "workflow_cancelled", "\(kinds)")
        let step = try #require(try await harness.store.steps(workflowID: "tidy").first { $0.activity == WaitsForCancel.name })
        #expect(step.status == .cancelled || step.status == .failed)
        #expect(step.error?.kind == .cancelled, "\(String(describing: step.error))")
        #expect(harness.coordinator.statistics.count(.activityCancelRequested) >= 1)
        await harness.shutdown()
    }

    @Test("a coordinator that stops asks no worker to cancel anything: its workflows still wait on their steps, and take them up where they stand when it starts again")
    func stopCancelsNothing() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: CleanupWorkflow.name, id: "waiting", input: .emptyObject, recipient: nil)
        try await waitUntil { started("waiting/") }
        await harness.stopCoordinator()
        #expect(harness.coordinator.statistics.count(.activityCancelRequested) == 0)
        #expect(!cancelled("waiting/"), "the running attempt goes on: \(counter.all)")
        harness.startCoordinator()
        #expect(try await harness.store.workflow(id: "waiting")?.status == .running)
        _ = try await harness.coordinator.cancel(workflowID: "waiting", reason: "now it may stop")
        try await waitUntil { cancelled("waiting/waits_for_cancel@0") }
        #expect(try await harness.waitFor("waiting", [.cancelled, .failed, .completed]).status == .cancelled)
        await harness.shutdown()
    }

    @Test("a terminated workflow ends at once, runs no cleanup, and its running activity is cancelled too")
    func terminate() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: CleanupWorkflow.name, id: "gone", input: .emptyObject, recipient: nil)
        try await waitUntil { started("gone/") }
        _ = try await harness.coordinator.cancel(workflowID: "gone", reason: "terminated by the test", terminate: true)
        let record = try await harness.waitFor("gone", [.cancelled, .completed, .failed])
        #expect(record.status == .cancelled && record.error?.message.contains("cancelled") == true)
        try await waitUntil { cancelled("gone/waits_for_cancel@0") }
        #expect(cleanups == 0, "no cleanup after a termination: \(counter.all)")
        await harness.shutdown()
    }

    @Test("code that gives up on a branch of a task group has the branch's activity cancelled; the workflow goes on")
    func scope() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: RacingWorkflow.name, id: "race", input: .emptyObject, recipient: nil)
        let record = try await harness.waitFor("race", [.completed, .failed, .cancelled])
        #expect(try record.output?.decode(String.self) == "fast")
        try await waitUntil { cancelled("race/waits_for_cancel@0") }
        await harness.shutdown()
    }
}
