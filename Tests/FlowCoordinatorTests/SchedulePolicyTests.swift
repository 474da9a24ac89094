import FlowCoordinator
import FlowCore
import Foundation
import Testing

/// The schedule's decisions as values: overlap policies, buffers, the catch-up window,
/// pauses, jitter and backfill times, with no clock or store.
@Suite("schedule policies")
struct SchedulePolicyTests {
    static let due = Date(timeIntervalSince1970: 1_800_000_000)

    func schedule(_ overlap: OverlapPolicy, buffered: [Date] = [], window: Int64? = nil, jitter: Int64? = nil) -> ScheduleRecord {
        ScheduleRecord(
            name: "tick", workflow: "counted", input: .emptyObject, everySeconds: 60, nextRunAt: Self.due, runs: 3, overlap: overlap, catchupWindowSeconds: window,
            jitterSeconds: jitter, buffered: buffered, lastWorkflowID: "tick@1799999940"
        )
    }

    @Test("a due run starts when the previous has ended, whatever the policy, and the next time is the next occurrence after now", arguments: OverlapPolicy.allCases)
    func startsWhenFree(_ overlap: OverlapPolicy) throws {
        let step = try ScheduleStep.decide(schedule(overlap), now: Self.due.addingTimeInterval(5), previousRunning: false)
        #expect(step.action == .start(nominal: Self.due, cancelling: nil))
        #expect(step.schedule.nextRunAt == Self.due.addingTimeInterval(60))
    }

    @Test("while the previous run goes, a due run is skipped, buffered once or always, cancels it, or starts beside it")
    func overlap() throws {
        let now = Self.due.addingTimeInterval(1)
        #expect(try ScheduleStep.decide(schedule(.skip), now: now, previousRunning: true).action == .skip(
            nominal: Self.due, reason: "the previous run tick@1799999940 is still going (overlap: skip)"
        ))
        let one = try ScheduleStep.decide(schedule(.bufferOne), now: now, previousRunning: true)
        #expect(one.action == .buffer(nominal: Self.due) && one.schedule.buffered == [Self.due])
        guard case .skip = try ScheduleStep.decide(schedule(.bufferOne, buffered: [Self.due.addingTimeInterval(-60)]), now: now, previousRunning: true).action else {
            Issue.record("buffer_one keeps one run waiting, not two")
            return
        }
        let all = try ScheduleStep.decide(schedule(.bufferAll, buffered: [Self.due.addingTimeInterval(-60)]), now: now, previousRunning: true)
        #expect(all.schedule.buffered == [Self.due.addingTimeInterval(-60), Self.due])
        #expect(try ScheduleStep.decide(schedule(.cancelOther), now: now, previousRunning: true).action == .start(nominal: Self.due, cancelling: "tick@1799999940"))
        #expect(try ScheduleStep.decide(schedule(.allowAll), now: now, previousRunning: true).action == .start(nominal: Self.due, cancelling: nil))
    }

    @Test("a buffered run starts first, once the previous has ended, and leaves the next time alone")
    func bufferedFirst() throws {
        let waiting = Self.due.addingTimeInterval(-60)
        let record = schedule(.bufferAll, buffered: [waiting, Self.due])
        #expect(try ScheduleStep.decide(record, now: Self.due.addingTimeInterval(1), previousRunning: true).action == .buffer(nominal: Self.due))
        let step = try ScheduleStep.decide(record, now: Self.due.addingTimeInterval(1), previousRunning: false)
        #expect(step.action == .start(nominal: waiting, cancelling: nil))
        #expect(step.schedule.buffered == [Self.due] && step.schedule.nextRunAt == Self.due)
    }

    @Test("a run found later than the catch-up window is skipped; within it, it starts once")
    func catchUp() throws {
        let late = try ScheduleStep.decide(schedule(.skip, window: 600), now: Self.due.addingTimeInterval(7200), previousRunning: false)
        #expect(late.action == .skip(nominal: Self.due, reason: "it was due 7200 s ago, past the catch-up window of 600 s"))
        #expect(late.schedule.nextRunAt == Self.due.addingTimeInterval(7260))
        #expect(try ScheduleStep.decide(schedule(.skip, window: 600), now: Self.due.addingTimeInterval(599), previousRunning: false).action == .start(nominal: Self.due, cancelling: nil))
    }

    @Test("a paused schedule waits, however late its run")
    func paused() throws {
        var record = schedule(.allowAll, buffered: [Self.due])
        record.paused = true
        let step = try ScheduleStep.decide(record, now: Self.due.addingTimeInterval(86_400), previousRunning: false)
        #expect(step.action == .wait && step.schedule == record)
    }

    @Test("jitter delays a run by the same share of it every time, within it, and differs between schedules")
    func jitter() throws {
        let record = schedule(.skip, jitter: 30)
        let delay = ScheduleStep.jitter(of: record, at: Self.due)
        #expect(delay >= 0 && delay < 30)
        #expect(ScheduleStep.jitter(of: record, at: Self.due) == delay)
        #expect(try ScheduleStep.decide(record, now: Self.due.addingTimeInterval(delay - 0.01), previousRunning: false).action == .wait)
        #expect(try ScheduleStep.decide(record, now: Self.due.addingTimeInterval(delay), previousRunning: false).action == .start(nominal: Self.due, cancelling: nil))
        let others = (0..<20).map { index in
            var other = record
            other.name = "tick-\(index)"
            return ScheduleStep.jitter(of: other, at: Self.due)
        }
        #expect(Set(others).count > 10, "schedules due together spread out")
        #expect(ScheduleStep.jitter(of: schedule(.skip), at: Self.due) == 0)
    }

    @Test("a backfill covers each occurrence after its start up to its end, at most its limit")
    func backfill() throws {
        let times = try ScheduleStep.occurrences(of: schedule(.skip), from: Self.due, to: Self.due.addingTimeInterval(300))
        #expect(times == (1...5).map { Self.due.addingTimeInterval(Double($0 * 60)) })
        #expect(try ScheduleStep.occurrences(of: schedule(.skip), from: Self.due, to: Self.due.addingTimeInterval(86_400), limit: 7).count == 7)
        #expect(ScheduleStep.workflowID(of: "tick", nominal: Self.due) == "tick@1800000000")
    }
}
