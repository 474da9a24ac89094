import FlowCore
import Foundation

/// What a schedule does when a run comes due while its previous run is still going, as in
/// Temporal's schedules.
public enum OverlapPolicy: String, Sendable, Codable, CaseIterable {
    /// The due run is not started (the default).
    case skip
    /// One due run waits for the previous to end, then starts; further ones are skipped.
    case bufferOne = "buffer_one"
    /// Every due run waits, and they start one after another.
    case bufferAll = "buffer_all"
    /// The previous run is cancelled, and the due one starts.
    case cancelOther = "cancel_other"
    /// The due run starts beside the previous.
    case allowAll = "allow_all"
}

/// A schedule's next move, decided from its record and the state of its last run, without
/// I/O (``decide(_:now:previousRunning:)``); the coordinator carries it out.
public struct ScheduleStep: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Nothing to do now.
        case wait
        /// Start the run due at `nominal` (its workflow id is `<name>@<nominal seconds>`);
        /// with `cancelling`, cancel that run first.
        case start(nominal: Date, cancelling: String?)
        /// The run due at `nominal` is not started: `reason` says why.
        case skip(nominal: Date, reason: String)
        /// The run due at `nominal` waits for the previous one to end.
        case buffer(nominal: Date)
    }

    public var action: Action
    /// The schedule as it stands after the action (next time, buffer).
    public var schedule: ScheduleRecord

    /// The next move of `schedule` at `now`. `previousRunning`: the last run it started
    /// has not ended. A buffered run goes first, once the previous has ended; a due run
    /// is late by its jitter at most, and skipped when it is later than the catch-up
    /// window (runs missed while the coordinator was down start once, not once each).
    public static func decide(_ schedule: ScheduleRecord, now: Date, previousRunning: Bool) throws -> ScheduleStep {
        var next = schedule
        guard !schedule.paused else { return ScheduleStep(action: .wait, schedule: next) }
        if let buffered = schedule.buffered.first, !previousRunning {
            next.buffered.removeFirst()
            return ScheduleStep(action: .start(nominal: buffered, cancelling: nil), schedule: next)
        }
        let nominal = schedule.nextRunAt
        guard nominal.addingTimeInterval(jitter(of: schedule, at: nominal)) <= now else { return ScheduleStep(action: .wait, schedule: next) }
        next.nextRunAt = try Recurrence(everySeconds: schedule.everySeconds, cron: schedule.cron).next(after: now)
        if let window = schedule.catchupWindowSeconds, now.timeIntervalSince(nominal) > Double(window) {
            return ScheduleStep(action: .skip(nominal: nominal, reason: "it was due \(Int(now.timeIntervalSince(nominal))) s ago, past the catch-up window of \(window) s"), schedule: next)
        }
        guard previousRunning else { return ScheduleStep(action: .start(nominal: nominal, cancelling: nil), schedule: next) }
        switch schedule.overlap {
        case .skip:
            return ScheduleStep(action: .skip(nominal: nominal, reason: "the previous run \(schedule.lastWorkflowID ?? "") is still going (overlap: skip)"), schedule: next)
        case .bufferOne where !schedule.buffered.isEmpty:
            return ScheduleStep(action: .skip(nominal: nominal, reason: "a run already waits for the previous one (overlap: buffer_one)"), schedule: next)
        case .bufferOne, .bufferAll:
            next.buffered.append(nominal)
            return ScheduleStep(action: .buffer(nominal: nominal), schedule: next)
        case .cancelOther:
            return ScheduleStep(action: .start(nominal: nominal, cancelling: schedule.lastWorkflowID), schedule: next)
        case .allowAll:
            return ScheduleStep(action: .start(nominal: nominal, cancelling: nil), schedule: next)
        }
    }

    /// How late the run due at `nominal` starts: a share of the schedule's jitter that
    /// depends only on its name and that time (FNV-1a), so it is the same after a restart
    /// and different schedules due together spread out.
    public static func jitter(of schedule: ScheduleRecord, at nominal: Date) -> TimeInterval {
        guard let jitter = schedule.jitterSeconds, jitter > 0 else { return 0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(schedule.name)@\(Int64(nominal.timeIntervalSince1970))".utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return Double(hash % UInt64(jitter * 1000)) / 1000
    }

    /// The workflow id of the run due at `nominal`.
    public static func workflowID(of schedule: String, nominal: Date) -> String {
        "\(schedule)@\(Int64(nominal.timeIntervalSince1970))"
    }

    /// The times a backfill from `start` to `end` starts runs for: every occurrence after
    /// `start` up to and including `end`, at most `limit`.
    public static func occurrences(of schedule: ScheduleRecord, from start: Date, to end: Date, limit: Int = 1000) throws -> [Date] {
        let recurrence = try Recurrence(everySeconds: schedule.everySeconds, cron: schedule.cron)
        var times: [Date] = []
        var time = start
        while times.count < limit {
            time = recurrence.next(after: time)
            guard time <= end else { break }
            times.append(time)
        }
        return times
    }
}
