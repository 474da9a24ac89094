import Synchronization

/// The message ids this worker process is running now, so a second copy of one (a
/// coordinator re-sending a request it could not confirm it sent, a publisher retrying)
/// waits for the first to finish and is then answered from the store instead of running
/// beside it.
final class RunningMessages: Sendable {
    private struct State: ~Copyable {
        var running: [String: [CheckedContinuation<Void, Never>]] = [:]
    }

    private let state = Mutex(State())

    /// Returns once no other delivery of `messageID` runs in this process, and marks this
    /// one running. Returns whether it had to wait (a duplicate was running).
    func enter(_ messageID: String) async -> Bool {
        var waited = false
        while true {
            let entered = state.withLock { state -> Bool in
                guard state.running[messageID] == nil else { return false }
                state.running[messageID] = []
                return true
            }
            if entered { return waited }
            waited = true
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let queued = state.withLock { state -> Bool in
                    guard state.running[messageID] != nil else { return false }
                    state.running[messageID]!.append(continuation)
                    return true
                }
                if !queued { continuation.resume() }
            }
        }
    }

    /// Marks `messageID` finished and wakes the copies waiting for it.
    func leave(_ messageID: String) {
        let waiting = state.withLock { $0.running.removeValue(forKey: messageID) ?? [] }
        for continuation in waiting { continuation.resume() }
    }
}
