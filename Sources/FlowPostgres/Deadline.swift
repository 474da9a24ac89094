import Synchronization

/// Runs `operation` in a task of its own and returns its result, or nil when it has not
/// finished by `deadline`; the operation is then cancelled and left behind.
///
/// For calls into postgres-nio that may never return: a query caught on a connection the
/// server ended (`pg_terminate_backend`, a restart) was seen waiting for ever, holding a
/// workflow's driver, or a lease keeper, with it. Every write here is fenced (the journal's
/// sequence, the lease's epoch), so a write abandoned this way that did commit after all is
/// found by the next read, as after a crash.
package func answer<Result: Sendable>(by deadline: ContinuousClock.Instant, _ operation: @escaping @Sendable () async throws -> Result) async throws -> Result? {
    let running = Task { try await operation() }
    let waiter = Mutex<CheckedContinuation<Result?, any Error>?>(nil)
    let take: @Sendable () -> CheckedContinuation<Result?, any Error>? = {
        waiter.withLock { waiting in
            defer { waiting = nil }
            return waiting
        }
    }
    return try await withCheckedThrowingContinuation { continuation in
        waiter.withLock { $0 = continuation }
        let timer = Task {
            // Cancelled: the operation answered first (a cancelled sleep returns at once,
            // and must not be taken for the deadline).
            guard (try? await Task.sleep(until: deadline)) != nil, let continuation = take() else { return }
            running.cancel()
            continuation.resume(returning: nil)
        }
        Task {
            let result = await running.result
            take()?.resume(with: result.map { $0 })
            timer.cancel()
        }
    }
}
