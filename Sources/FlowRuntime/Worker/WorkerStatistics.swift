import Synchronization

/// Counts of what a worker did, per activity, for logs, `flow status` and health.
public final class WorkerStatistics: Sendable {
    public enum Event: String, Sendable, CaseIterable {
        case started, completed, failed, retried, deadLettered, duplicate
    }

    private struct State {
        var counts: [String: [Event: Int]] = [:]
        var inFlight = 0
        var totalDuration: Duration = .zero
    }

    private let state = Mutex(State())

    public init() {}

    func record(_ event: Event, activity: String, duration: Duration? = nil) {
        state.withLock { state in
            state.counts[activity, default: [:]][event, default: 0] += 1
            if let duration { state.totalDuration += duration }
        }
    }

    func begin() { state.withLock { $0.inFlight += 1 } }
    func end() { state.withLock { $0.inFlight -= 1 } }

    /// Activities running now.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// How many times `event` happened, for one activity or all.
    public func count(_ event: Event, activity: String? = nil) -> Int {
        state.withLock { state in
            if let activity { return state.counts[activity]?[event] ?? 0 }
            return state.counts.values.reduce(0) { $0 + ($1[event] ?? 0) }
        }
    }
}
