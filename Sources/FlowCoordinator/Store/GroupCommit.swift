import Foundation
import GRDB
import Synchronization

/// Commits the writes that arrive while a commit runs together, in the next commit: group
/// commit, as databases do it for their logs.
///
/// With a thousand workflows running, a thousand appends wait at any moment. One SQLite
/// transaction each pays a writer hop, a `BEGIN` and a `COMMIT` and the write-ahead-log
/// frames of the same few pages every time; one transaction for all that are waiting pays
/// them once. Each write still runs in a savepoint of its own, so a write that fails (a
/// fenced append, a conflict) rolls back alone and leaves the others in the batch whole,
/// and each caller gets its own result. A write never waits for a timer: alone, it commits
/// at once; it waits only for the commit in progress, which is the latency group commit adds.
///
/// There is no task of its own. The first writer to find no commit running leads: it
/// commits everything queued, tells each writer its result, and hands the lead to the
/// first writer that queued meanwhile, whose own write is in the next batch.
final class GroupCommit: Sendable {
    private struct Job: Sendable {
        /// Runs the write in its savepoint, and keeps its result for the writer.
        var run: @Sendable (Database) -> Void
        /// The commit failed after the write ran: the writer gets this error instead.
        var fail: @Sendable (any Error) -> Void
        /// Wakes the writer: `true` hands it the lead. Nil for the leader's own write.
        var wake: CheckedContinuation<Bool, Never>?
    }

    private struct State {
        var queue: [Job] = []
        var leading = false
        var statistics = GroupCommitStatistics()
    }

    private let writer: any DatabaseWriter
    private let state = Mutex(State())

    init(_ writer: any DatabaseWriter) {
        self.writer = writer
    }

    /// How many commits and writes so far, for benchmarks and `/metrics`.
    var statistics: GroupCommitStatistics { state.withLock { $0.statistics } }

    /// Runs `body` in a savepoint of the next commit, and returns its result once that
    /// commit is durable.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let outcome = Mutex<Result<T, any Error>?>(nil)
        let run: @Sendable (Database) -> Void = { db in
            do {
                var value: T?
                try db.inSavepoint {
                    value = try body(db)
                    return .commit
                }
                outcome.withLock { $0 = .success(value!) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
        }
        let fail: @Sendable (any Error) -> Void = { error in outcome.withLock { $0 = .failure(error) } }
        let leads = await withCheckedContinuation { wake in
            let leadsNow = state.withLock { state -> Bool in
                if state.leading {
                    state.queue.append(Job(run: run, fail: fail, wake: wake))
                    return false
                }
                state.leading = true
                state.queue.append(Job(run: run, fail: fail, wake: nil))
                return true
            }
            if leadsNow { wake.resume(returning: true) }
        }
        if leads { await lead() }
        return try outcome.withLock { $0! }.get()
    }

    /// Commits the queue, wakes its writers, and hands the lead on.
    private func lead() async {
        let batch = state.withLock { state in
            defer { state.queue.removeAll() }
            return state.queue
        }
        do {
            try await writer.write { db in
                for job in batch { job.run(db) }
            }
        } catch {
            for job in batch { job.fail(error) }
        }
        let next = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.statistics.committed(batch.count)
            guard !state.queue.isEmpty else {
                state.leading = false
                return nil
            }
            // The first writer that queued meanwhile leads the next commit, its own write in it.
            let wake = state.queue[0].wake
            state.queue[0].wake = nil
            return wake
        }
        for job in batch { job.wake?.resume(returning: false) }
        next?.resume(returning: true)
    }
}

/// What group commit did: how many commits, and how many writes in them. (How long a
/// write waits, `flow-workflow-benchmark` measures from the caller's side.)
public struct GroupCommitStatistics: Sendable, Equatable {
    public private(set) var commits = 0
    public private(set) var writes = 0
    public private(set) var largestBatch = 0

    mutating func committed(_ count: Int) {
        commits += 1
        writes += count
        largestBatch = max(largestBatch, count)
    }

    /// Writes per commit, on average.
    public var meanBatch: Double { commits == 0 ? 0 : Double(writes) / Double(commits) }
}
