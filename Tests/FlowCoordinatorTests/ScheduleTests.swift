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
