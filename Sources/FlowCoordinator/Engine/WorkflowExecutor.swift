import Synchronization

/// The executor a workflow's code runs on: every task of one run (the workflow itself, its
/// `async let` children and task-group children, which inherit the preference) is
/// enqueued here and runs only when the engine calls ``drain()``, one job at a time, in the
/// order the jobs were enqueued.
///
/// That makes the order in which the code issues commands a function of the order in which
/// the engine resumes it, and nothing else: thread timing, core count and load play no
/// part. The engine resumes the code only as it applies journal events, in journal order,
/// so a replay issues the same commands at the same positions as the first run did.
///
/// Modelled on the buffering executor of apple/swift-temporal-sdk; ours keeps plain FIFO
/// order and tells the engine when a job arrives while no drain runs (code that awaited
/// something outside the workflow, which the determinism rules forbid but which must not
/// leave the run stuck).
package final class WorkflowExecutor: TaskExecutor, @unchecked Sendable {
    // `@unchecked`: the only state is behind the mutex; jobs are handed over as
    // `UnownedJob`, which the runtime keeps alive until they have run.
    private struct State {
        var jobs: [UnownedJob] = []
        var head = 0
        var draining = false
    }

    private let state = Mutex(State())
    private let jobArrivedWhileIdle: @Sendable () -> Void

    /// `jobArrivedWhileIdle` runs (on the enqueuing thread) when a job is enqueued while no
    /// drain is running and none is pending: the engine should drain soon.
    init(jobArrivedWhileIdle: @escaping @Sendable () -> Void) {
        self.jobArrivedWhileIdle = jobArrivedWhileIdle
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let wake = state.withLock { state -> Bool in
            state.jobs.append(job)
            return !state.draining && state.jobs.count - state.head == 1
        }
        if wake { jobArrivedWhileIdle() }
    }

    /// Runs jobs on the calling thread until none is left: until every task of the run is
    /// suspended or finished. Not reentrant; the engine calls it from one place at a time.
    package func drain() {
        state.withLock { $0.draining = true }
        while let job = next() {
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    private func next() -> UnownedJob? {
        state.withLock { state in
            guard state.head < state.jobs.count else {
                state.jobs.removeAll(keepingCapacity: true)
                state.head = 0
                state.draining = false
                return nil
            }
            defer { state.head += 1 }
            return state.jobs[state.head]
        }
    }
}
