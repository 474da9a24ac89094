import Foundation
import Synchronization

/// Runs a test's long computation on a thread of its own rather than on Swift's
/// cooperative pool.
///
/// The pool has one thread per core: two here. Tests run side by side, so a test that
/// computes for seconds on the pool holds a thread that every other test's replies, timers
/// and acknowledgements need; two such tests stall the whole suite, and a test measuring a
/// wait then sees seconds it did not cause. The task keeps running as the test's own (a
/// task executor preference, not a new thread of control), so `#expect` inside still
/// records against the test.
public func onOwnThread<Value>(_ body: () async throws -> Value) async throws -> Value {
    let executor = OwnThreadExecutor()
    defer { executor.finish() }
    return try await withTaskExecutorPreference(executor) {
        return try await body()
    }
}

/// A task executor whose jobs run, in turn, on one thread it starts.
final class OwnThreadExecutor: TaskExecutor {
    private struct State {
        var jobs: [UnownedJob] = []
        var finished = false
    }

    private let state = Mutex(State())
    private let jobsWaiting = DispatchSemaphore(value: 0)

    init() {
        let thread = Thread { [self] in runJobs() }
        // The forward and backward passes call deeply: more than a thread's default stack.
        thread.stackSize = 8 << 20
        thread.name = "test computation"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        state.withLock { $0.jobs.append(job) }
        jobsWaiting.signal()
    }

    /// Lets the thread end once the jobs already given to it have run.
    func finish() {
        state.withLock { $0.finished = true }
        jobsWaiting.signal()
    }

    private func runJobs() {
        while true {
            jobsWaiting.wait()
            let next: UnownedJob?? = state.withLock { state in
                if !state.jobs.isEmpty { return .some(state.jobs.removeFirst()) }
                return state.finished ? .none : .some(nil)
            }
            switch next {
            case .none: return
            case .some(nil): continue
            case .some(let job?): job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
    }
}
