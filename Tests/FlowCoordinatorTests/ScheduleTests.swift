import FlowCoordinator
import FlowContracts
import FlowCore
import FlowTesting
import Foundation
import Testing

@Suite("recurrences")
struct RecurrenceTests {
    func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test("cron expressions find the next matching minute, in UTC", arguments: [
        ("0 3 * * *", "2026-11-29T21:08:30Z", "2026-11-30T03:00:00Z"),
        ("*/15 * * * *", "2026-11-29T21:08:30Z", "2026-11-29T21:15:00Z"),
        ("30 9 * * 1-5", "2026-11-28T10:00:00Z", "2026-11-30T09:30:00Z"),
        ("0 0 1 1 *", "2026-11-29T21:08:30Z", "2027-01-01T00:00:00Z"),
        ("5,35 12 * * *", "2026-11-29T12:05:00Z", "2026-11-29T12:35:00Z"),
        ("0 12 13 * 5", "2026-11-29T00:00:00Z", "2026-12-04T12:00:00Z"),
    ])
    func cron(expression: String, after: String, expected: String) throws {
        #expect(try CronExpression(expression).next(after: date(after)) == date(expected))
    }

    @Test("malformed cron expressions are refused with what is wrong", arguments: ["* * * *", "61 * * * *", "*/0 * * * *", "a b c d e", "5-1 * * * *"])
    func malformedCron(expression: String) {
        #expect(throws: ActivityFailure.self) { try CronExpression(expression) }
    }

    @Test("intervals run on multiples of themselves, so a restart does not shift them")
    func interval() throws {
        let recurrence = try Recurrence(everySeconds: 3600, cron: nil)
        #expect(recurrence.next(after: date("2026-11-29T21:08:30Z")) == date("2026-11-29T22:00:00Z"))
        #expect(recurrence.next(after: date("2026-11-29T22:00:00Z")) == date("2026-11-29T23:00:00Z"))
        #expect(throws: ActivityFailure.self) { try Recurrence(everySeconds: nil, cron: nil) }
        #expect(throws: ActivityFailure.self) { try Recurrence(everySeconds: 60, cron: "* * * * *") }
    }
}

@Suite("schedules on a real broker", .serialized)
struct ScheduleTests {
    let counter = RunCounter()

    func harness() async throws -> CoordinatorHarness {
        try await CoordinatorHarness(workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: Switch()))
    }

    func runs(of schedule: String, in harness: CoordinatorHarness) async throws -> [WorkflowSummary] {
        try await harness.store.workflows(matching: WorkflowFilter(idPrefix: schedule + "@"), after: nil, limit: 1000)
    }

    @Test("a schedule starts its workflow on time, with an id made of its name and due time")
    func firesOnTime() async throws {
        let harness = try await harness()
        let schedule = try await harness.coordinator.addSchedule(
            .init(name: "tick", workflow: CountedWorkflow.name, input: try JSONText(encoding: CountedEcho.Payload(value: "tick")), everySeconds: 2)
        )
        let deadline = ContinuousClock.now + .seconds(60)
        while try await runs(of: "tick", in: harness).isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let first = try #require(try await runs(of: "tick", in: harness).last)
        #expect(first.id == "tick@\(Int64(schedule.nextRunAt.timeIntervalSince1970))")
        // Not early; how late depends on the machine (a benchmark's business, not a test's).
        #expect(first.startedAt >= schedule.nextRunAt)
        _ = try await harness.waitFor(first.id, [.completed])
        await harness.shutdown()
    }

    @Test("runs missed while the coordinator was down run once when it is back, not once each")
    func noPileUp() async throws {
        let harness = try await harness()
        try await harness.coordinator.addSchedule(.init(name: "minutely", workflow: CountedWorkflow.name, input: try JSONText(encoding: CountedEcho.Payload(value: "h")), everySeconds: 60))
        await harness.stopCoordinator()
        // Two hours of downtime: 120 runs of a one-minute schedule were due.
        var stored = try #require(try await harness.store.schedules().first)
        stored.nextRunAt = Date().addingTimeInterval(-7200)
        try await harness.store.upsertSchedule(stored)
        let restart = Date()
        harness.startCoordinator()
        let deadline = ContinuousClock.now + .seconds(60)
        while try await runs(of: "minutely", in: harness).isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .seconds(1))
        // Runs due before the restart: the missed ones, which must have become one. (A run
        // due after the restart is the schedule going on as usual.)
        let missed = try await runs(of: "minutely", in: harness).filter { run in
            Double(run.id.split(separator: "@").last.flatMap { Int64($0) } ?? 0) < restart.timeIntervalSince1970
        }
        #expect(missed.count == 1)
        let after = try #require(try await harness.store.schedules().first)
        #expect(after.nextRunAt > restart)
        await harness.shutdown()
    }
}

/// Schedule policies carried out by the coordinator, on the in-memory transport: each run
/// of `collecting` goes on until it is told to stop, so the next due run overlaps it.
@Suite("schedule policies in the coordinator")
struct SchedulePolicyCoordinatorTests {
    let counter = RunCounter()

    func harness() async throws -> CoordinatorHarness {
        try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: Switch()), transports: .inMemory(InMemoryBroker())
        )
    }

    func runs(_ harness: CoordinatorHarness) async throws -> [WorkflowSummary] {
        try await harness.store.workflows(matching: WorkflowFilter(idPrefix: "overlap@"), after: nil, limit: 1000).sorted { $0.id < $1.id }
    }

    func schedule(_ harness: CoordinatorHarness) async throws -> ScheduleRecord { try #require(try await harness.store.schedules().first) }

    func stop(_ id: String, _ harness: CoordinatorHarness) async throws {
        _ = try await harness.coordinator.signal(workflowID: id, name: Nudge.name, input: try JSONText(encoding: "stop"), signalID: "stop-\(id)")
        _ = try await harness.waitFor(id, [.completed])
    }

    @Test("skip and buffer_one hold a due run back while the previous goes; cancel_other cancels it", arguments: [OverlapPolicy.skip, .bufferOne, .cancelOther])
    func overlap(_ policy: OverlapPolicy) async throws {
        let harness = try await harness()
        try await harness.coordinator.addSchedule(
            .init(name: "overlap", workflow: CollectingWorkflow.name, input: try JSONText(encoding: CountedEcho.Payload(value: "-")), everySeconds: 1, overlap: policy.rawValue)
        )
        try await waitUntil { try await runs(harness).count == 1 }
        let first = try await runs(harness)[0].id
        switch policy {
        case .skip:
            try await waitUntil { try await schedule(harness).skipped >= 2 }
            #expect(try await runs(harness).count == 1, "nothing started beside the running one")
            try await stop(first, harness)
            try await waitUntil { try await runs(harness).count == 2 }
        case .bufferOne:
            try await waitUntil { try await schedule(harness).buffered.count == 1 }
            try await waitUntil { try await schedule(harness).skipped >= 1 }
            #expect(try await runs(harness).count == 1)
            let waiting = try await schedule(harness).buffered[0]
            try await stop(first, harness)
            try await waitUntil { try await runs(harness).count == 2 }
            #expect(try await runs(harness).contains { $0.id == ScheduleStep.workflowID(of: "overlap", nominal: waiting) }, "the buffered run started under its own time")
        default:
            let record = try await harness.waitFor(first, [.cancelled, .completed, .failed])
            #expect(record.status == .cancelled)
            try await waitUntil { try await runs(harness).count >= 2 }
            // The schedule records its new run right after starting it.
            try await waitUntil { try await schedule(harness).lastWorkflowID != first }
        }
        await harness.shutdown()
    }

    @Test("a paused schedule starts nothing; resumed, it starts the run it missed once; a backfill starts past runs once each")
    func pauseAndBackfill() async throws {
        let harness = try await harness()
        try await harness.coordinator.addSchedule(
            .init(name: "overlap", workflow: SleeplessEcho.name, input: try JSONText(encoding: CountedEcho.Payload(value: "-")), everySeconds: 1, paused: true)
        )
        try await Task.sleep(for: .seconds(2))
        #expect(try await runs(harness).isEmpty, "a schedule added paused starts nothing")
        _ = try await harness.coordinator.pauseSchedule("overlap", paused: false, note: nil)
        try await waitUntil { try await runs(harness).count >= 1 }
        _ = try await harness.coordinator.pauseSchedule("overlap", paused: true, note: "maintenance")
        #expect(try await schedule(harness).pauseNote == "maintenance")
        let base = Date(timeIntervalSince1970: 1_700_000_000)
        let backfill = WorkflowCommand.BackfillSchedule(name: "overlap", from: base, to: base.addingTimeInterval(3))
        let ids = try await harness.coordinator.backfillSchedule(backfill)
        #expect(ids == ["overlap@1700000001", "overlap@1700000002", "overlap@1700000003"])
        #expect(try await harness.coordinator.backfillSchedule(backfill) == ids, "a repeated backfill names the same runs")
        for id in ids ?? [] { _ = try await harness.waitFor(id, [.completed]) }
        #expect(counter.all.filter { $0.key.hasPrefix("overlap@170000000") }.count == 3, "each backfilled run ran once: \(counter.all)")
        await harness.shutdown()
    }
}
