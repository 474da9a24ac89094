import Foundation
import Synchronization

/// The cancel requests a worker has received (``ActivityCancel``), by message id: for an
/// attempt running here, a wake-up that ends it; for one that has not started, a note that
/// answers it cancelled when it arrives. A request often comes before the attempt does (the
/// request was still queued), so notes are kept for ``memory`` and at most ``capacity`` of
/// them, oldest forgotten first.
final class ActivityCancels: Sendable {
    static let memory: Duration = .seconds(3600)
    static let capacity = 10_000

    private struct State: ~Copyable {
        /// The attempts running here, each with the continuations of its watchers.
        var running: [String: AsyncStream<String>.Continuation] = [:]
        /// Requests for message ids that were not running, oldest first.
        var noted: [String: (reason: String, at: ContinuousClock.Instant)] = [:]
        var order: [String] = []
    }

    private let state = Mutex(State())

    /// Records a cancel request: a running attempt is told; any other is noted.
    /// Returns whether an attempt was running.
    @discardableResult
    func cancel(_ messageID: String, reason: String, now: ContinuousClock.Instant = .now) -> Bool {
        let running = state.withLock { state -> AsyncStream<String>.Continuation? in
            if let running = state.running[messageID] { return running }
            if state.noted[messageID] == nil { state.order.append(messageID) }
            state.noted[messageID] = (reason, now)
            Self.forgetOld(&state, now: now)
            return nil
        }
        running?.yield(reason)
        return running != nil
    }

    /// The reason of a cancel request received before `messageID` started, if one was.
    func noted(_ messageID: String, now: ContinuousClock.Instant = .now) -> String? {
        state.withLock { state in
            Self.forgetOld(&state, now: now)
            return state.noted[messageID]?.reason
        }
    }

    /// Watches for a cancel request of an attempt while it runs: the stream yields the
    /// request's reason, at once for one noted just before the watch began (it came
    /// between the worker's check and the start). `end()` stops watching.
    func watch(_ messageID: String) -> (requests: AsyncStream<String>, end: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let early = state.withLock { state in
            state.running[messageID] = continuation
            return state.noted[messageID]?.reason
        }
        if let early { continuation.yield(early) }
        return (stream, { [self] in
            continuation.finish()
            state.withLock { state in
                state.running[messageID] = nil
            }
        })
    }

    private static func forgetOld(_ state: inout State, now: ContinuousClock.Instant) {
        while let oldest = state.order.first, let note = state.noted[oldest], state.order.count > capacity || now - note.at > memory {
            state.order.removeFirst()
            state.noted[oldest] = nil
        }
        // An id whose note was replaced keeps its place: drop stale order entries.
        while let oldest = state.order.first, state.noted[oldest] == nil { state.order.removeFirst() }
    }
}
