import FlowCore
import Foundation
import Logging

/// Measures the transport end to end: a requester publishes requests with `reply_to`, a
/// responder on its own connection answers each one, and the requester collects every
/// reply, exactly as a worker and the coordinator will.
///
/// Used by `flow smoke` (a check that a broker and the transport work) and by the
/// transport benchmark. Every reply is checked against its request.
public struct RoundTripProbe: Sendable {
    /// What a run measured.
    public struct Result: Sendable {
        public var roundTrips: Int
        public var seconds: Double
        public var roundTripsPerSecond: Double { Double(roundTrips) / seconds }
    }

    public var requester: AMQPConnection
    public var responder: AMQPConnection
    /// How many requests are in flight at once.
    public var window: Int
    /// Queue names are made unique per run, so probes can run beside each other and
    /// beside real workers.
    public var queuePrefix: String

    public init(requester: AMQPConnection, responder: AMQPConnection, window: Int = 32, queuePrefix: String = "flow.probe") {
        self.requester = requester
        self.responder = responder
        self.window = window
        self.queuePrefix = queuePrefix
    }

    /// Runs `count` round trips and returns how long they took. Throws when a reply is
    /// missing, duplicated or does not match its request.
    public func run(count: Int, bodySize: Int = 256) async throws -> Result {
        let run = UUID().uuidString.prefix(8).lowercased()
        let requestQueue = "\(queuePrefix).\(run).requests"
        let replyQueue = "\(queuePrefix).\(run).replies"
        // Durable queues that the broker deletes a minute after the probe stops using them.
        let topology = Topology(queues: [
            .init(name: requestQueue, arguments: ["x-expires": 60_000]),
            .init(name: replyQueue, arguments: ["x-expires": 60_000]),
        ])
        try await requester.declare(topology)

        let requests = try await responder.consume(queue: requestQueue, prefetch: UInt16(clamping: window))
        let replies = try await requester.consume(queue: replyQueue, prefetch: UInt16(clamping: window))
        defer {
            requests.cancel()
            replies.cancel()
        }
        let responder = self.responder
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: bodySize)

        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { answers in
                    var answered = 0
                    for try await request in requests {
                        answers.addTask {
                            var properties = AMQPProperties.persistent()
                            properties.correlationID = request.properties.correlationID
                            try await responder.publish(AMQPMessage(routingKey: request.properties.replyTo ?? "", properties: properties, body: request.body))
                            try await request.ack()
                        }
                        answered += 1
                        if answered == count { break }
                    }
                    try await answers.waitForAll()
                }
            }
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { senders in
                    let tokens = AsyncStream<Int>.makeStream()
                    for _ in 0..<min(window, count) { tokens.continuation.yield(0) }
                    senders.addTask {
                        var seen = Set<Int>()
                        for try await reply in replies {
                            guard let id = reply.properties.correlationID.flatMap(Int.init), id >= 0, id < count, seen.insert(id).inserted,
                                reply.body.count == bodySize
                            else {
                                throw AMQPError(.protocolFailure, "the probe received an unexpected or duplicate reply (correlation id \(reply.properties.correlationID ?? "none"))")
                            }
                            try await reply.ack()
                            tokens.continuation.yield(0)
                            if seen.count == count { break }
                        }
                        tokens.continuation.finish()
                    }
                    var next = 0
                    for await _ in tokens.stream where next < count {
                        let id = next
                        next += 1
                        senders.addTask {
                            var properties = AMQPProperties.persistent()
                            properties.correlationID = String(id)
                            properties.messageID = "\(run)-\(id)"
                            properties.replyTo = replyQueue
                            try await requester.publish(AMQPMessage(routingKey: requestQueue, properties: properties, body: payload))
                        }
                    }
                    try await senders.waitForAll()
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        _ = try? await requester.deleteQueue(requestQueue)
        _ = try? await requester.deleteQueue(replyQueue)
        return Result(roundTrips: count, seconds: seconds)
    }
}
