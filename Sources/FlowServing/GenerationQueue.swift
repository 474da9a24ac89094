import FlowML
import Foundation
import Synchronization

/// Runs generations one at a time on a thread of its own, in the order they came, and
/// refuses more than `capacity` waiting with a 429 that says when to ask again: the
/// engine's compute threads serve one model pass at a time, so a request waits its turn
/// rather than slowing every other.
final class GenerationQueue: Sendable {
    /// One generation: a prompt's tokens, how to pick the next, and over which adapter.
    struct Job: Sendable {
        var prompt: [Int]
        var settings: GenerationSettings
        var adapter: LoRAAdapter?
        /// The JSON the answer must be (`response_format`), with the vocabulary's bytes.
        var shape: JSONShape?
        var tokenBytes: [[UInt8]?] = []
    }

    /// What a generation streams: each token as it comes, then why it stopped.
    enum Event: Sendable {
        case token(Int)
        case finished(Generation.FinishReason)
    }

    private struct State {
        var waiting = 0
        /// Seconds a generation took, on average lately: what `Retry-After` is told from.
        var averageSeconds = 1.0
    }

    let capacity: Int
    private let model: LlamaModel
    private let queue = DispatchQueue(label: "flow.serve.generation")
    private let state = Mutex(State())

    init(model: LlamaModel, capacity: Int) {
        self.model = model
        self.capacity = capacity
    }

    /// How many generations wait or run.
    var load: Int { state.withLock { $0.waiting } }

    /// Queues `job`, or refuses it with a 429 when `capacity` generations wait or run
    /// already. The stream ends when the generation does; ending the stream early (the
    /// client went away) stops the generation at its next token.
    func submit(_ job: Job) throws(ServingError) -> AsyncThrowingStream<Event, any Error> {
        let admitted = state.withLock { state -> (Bool, Int) in
            guard state.waiting < capacity else { return (false, Int((Double(state.waiting) * state.averageSeconds).rounded(.up))) }
            state.waiting += 1
            return (true, 0)
        }
        guard admitted.0 else {
            throw ServingError(
                status: .tooManyRequests, message: "This server has \(capacity) generations waiting or running: try again in \(max(admitted.1, 1)) s.",
                type: "requests", code: "rate_limit_exceeded", retryAfter: max(admitted.1, 1)
            )
        }
        let (stream, continuation) = AsyncThrowingStream<Event, any Error>.makeStream()
        let stopped = StopFlag()
        continuation.onTermination = { _ in stopped.raise() }
        queue.async { [self] in
            let started = Date()
            defer {
                let seconds = Date().timeIntervalSince(started)
                self.state.withLock { state in
                    state.waiting -= 1
                    state.averageSeconds = state.averageSeconds * 0.8 + seconds * 0.2
                }
            }
            guard !stopped.isRaised else { return continuation.finish() }
            do {
                let constraint = job.shape.map { JSONConstraint(shape: $0, vocabulary: job.tokenBytes) }
                let generation = try model.generate(prompt: job.prompt, settings: job.settings, adapter: job.adapter, constraint: constraint) { token in
                    continuation.yield(.token(token))
                    return !stopped.isRaised
                }
                continuation.yield(.finished(generation.finishReason))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        return stream
    }
}

/// Set once by whoever stops a generation (its client went away); read by the generation
/// between tokens.
private final class StopFlag: Sendable {
    private let raised = Mutex(false)
    func raise() { raised.withLock { $0 = true } }
    var isRaised: Bool { raised.withLock { $0 } }
}
