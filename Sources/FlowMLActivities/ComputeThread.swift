import Foundation

/// Runs engine work on a thread of its own. The engine's calls are synchronous and run
/// for seconds to hours; on Swift's cooperative pool (one thread per core) they would hold
/// threads that the worker's replies, acknowledgements and heartbeats need.
enum ComputeThread {
    static func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            let thread = Thread {
                continuation.resume(with: Swift.Result { try body() })
            }
            // Deep call chains in the forward and backward passes: more than the default.
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}
