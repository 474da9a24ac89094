import FlowML
import Foundation
import Synchronization

/// Runs the server's generations on a thread of its own, batching them: each decoding step
/// takes the next token of every sequence in hand together (`LlamaModel.decodeStep`), so
/// the base model's weights are read once a step for all of them. A request that arrives
/// joins at the next step, after its prompt has run through the model (continuous
/// batching). More than `capacity` waiting or running are refused with a 429 that says
/// when to ask again.
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

    /// A job handed to the decoding thread, with where its events go.
    private struct Arrival: Sendable {
        var job: Job
        var events: AsyncThrowingStream<Event, any Error>.Continuation
        var stopped: StopFlag
    }

    private struct State {
        var admitted = 0
        var arrivals: [Arrival] = []
        var decoding = false
        /// Seconds a generation took, on average lately: what `Retry-After` is told from.
        var averageSeconds = 1.0
    }

    let capacity: Int
    /// The most sequences one decoding step takes; the rest wait for a place.
    let batchLimit: Int
    private let model: LlamaModel
    private let state = Mutex(State())

    init(model: LlamaModel, capacity: Int, batchLimit: Int = 16) {
        self.model = model
        self.capacity = capacity
        self.batchLimit = max(1, batchLimit)
    }

    /// Queues `job`, or refuses it with a 429 when `capacity` generations wait or run
    /// already. The stream ends when the generation does; ending the stream early (the
    /// client went away) stops the generation at its next token.
    func submit(_ job: Job) throws(ServingError) -> AsyncThrowingStream<Event, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Event, any Error>.makeStream()
        let stopped = StopFlag()
        continuation.onTermination = { _ in stopped.raise() }
        let (admitted, wait, startThread) = state.withLock { state -> (Bool, Int, Bool) in
            guard state.admitted < capacity else { return (false, Int((Double(state.admitted) * state.averageSeconds / Double(batchLimit)).rounded(.up)), false) }
            state.admitted += 1
            state.arrivals.append(Arrival(job: job, events: continuation, stopped: stopped))
            defer { state.decoding = true }
            return (true, 0, !state.decoding)
        }
        guard admitted else {
            throw ServingError(
                status: .tooManyRequests, message: "This server has \(capacity) generations waiting or running: try again in \(max(wait, 1)) s.",
                type: "requests", code: "rate_limit_exceeded", retryAfter: max(wait, 1)
            )
        }
        if startThread { Thread.detachNewThread { [self] in decode() } }
        return stream
    }

    /// A sequence being decoded.
    private struct Sequence {
        var arrival: Arrival
        var cache: KVCache
        var logits: [Float]
        var picker: TokenPicker
        var constraint: JSONConstraint?
        var made = 0
        var lastToken = 0
        let started = Date()
    }

    /// The decoding thread: until nothing is left, takes the arrivals in (running each
    /// prompt), picks every sequence's next token, and runs one step for all that go on.
    private func decode() {
        var sequences: [Sequence] = []
        while true {
            let arrivals = state.withLock { state -> [Arrival]? in
                let room = batchLimit - sequences.count
                if sequences.isEmpty && state.arrivals.isEmpty {
                    state.decoding = false
                    return nil
                }
                let taken = Array(state.arrivals.prefix(max(0, room)))
                state.arrivals.removeFirst(taken.count)
                return taken
            }
            guard let arrivals else { return }
            for arrival in arrivals {
                if arrival.stopped.isRaised { end(arrival, started: Date(), with: nil); continue }
                do {
                    let picker = try TokenPicker(arrival.job.settings)
                    let (cache, logits) = try model.prefill(arrival.job.prompt, adapter: arrival.job.adapter)
                    let constraint = arrival.job.shape.map { JSONConstraint(shape: $0, vocabulary: arrival.job.tokenBytes) }
                    sequences.append(Sequence(arrival: arrival, cache: cache, logits: logits, picker: picker, constraint: constraint))
                } catch {
                    end(arrival, started: Date(), with: .failure(error))
                }
            }
            // Each sequence's next token, as `LlamaModel.generate` picks it; those that end
            // here leave the batch.
            var going: [Int] = []
            var tokens: [Int] = []
            for index in sequences.indices {
                if let ending = next(&sequences[index]) {
                    end(sequences[index].arrival, started: sequences[index].started, with: ending)
                } else {
                    going.append(index)
                    tokens.append(sequences[index].lastToken)
                }
            }
            var caches = going.map { sequences[$0].cache }
            for index in going { sequences[index].cache = KVCache(layers: 0) }
            do {
                let logits = try model.decodeStep(tokens, caches: &caches, adapters: going.map { sequences[$0].arrival.job.adapter })
                for (slot, index) in going.enumerated() {
                    sequences[index].cache = caches[slot]
                    sequences[index].logits = logits[slot]
                }
                sequences = going.map { sequences[$0] }
            } catch {
                for index in going { end(sequences[index].arrival, started: sequences[index].started, with: .failure(error)) }
                sequences = []
            }
        }
    }

    /// Picks the next token of `sequence` and hands it on; returns how the sequence ended
    /// when it did (the order of `LlamaModel.generate`'s checks, so one sequence alone
    /// makes the same tokens).
    private func next(_ sequence: inout Sequence) -> Result<Generation.FinishReason, any Error>? {
        let settings = sequence.picker.settings
        if sequence.arrival.stopped.isRaised { return .success(.length) }
        if sequence.made >= settings.maximumNewTokens { return .success(.length) }
        if let constraint = sequence.constraint {
            if constraint.isFinished { return .success(.eos) }
            constraint.mask(&sequence.logits, remaining: settings.maximumNewTokens - sequence.made)
        }
        let token = sequence.picker.pick(sequence.logits)
        if settings.stopTokens.contains(token) { return .success(.eos) }
        sequence.constraint?.accept(token)
        sequence.made += 1
        sequence.lastToken = token
        sequence.arrival.events.yield(.token(token))
        if sequence.made >= settings.maximumNewTokens || sequence.arrival.stopped.isRaised { return .success(.length) }
        if sequence.constraint?.isFinished == true { return .success(.eos) }
        return nil
    }

    private func end(_ arrival: Arrival, started: Date, with ending: Result<Generation.FinishReason, any Error>?) {
        switch ending {
        case .success(let reason)?:
            arrival.events.yield(.finished(reason))
            arrival.events.finish()
        case .failure(let error)?:
            arrival.events.finish(throwing: error)
        case nil:
            arrival.events.finish()
        }
        let seconds = Date().timeIntervalSince(started)
        state.withLock { state in
            state.admitted -= 1
            state.averageSeconds = state.averageSeconds * 0.8 + seconds * 0.2
        }
    }
}

/// Set once by whoever stops a generation (its client went away); read by the generation
/// between tokens.
private final class StopFlag: Sendable {
    private let raised = Mutex(false)
    func raise() { raised.withLock { $0 = true } }
    var isRaised: Bool { raised.withLock { $0 } }
}
