import FlowCore
import FlowOpenAI
import FlowTransport
import Logging
import ServiceLifecycle

/// Keeps the rate limiter's share of the limits right as copies of the OpenAI actor start
/// and stop: it asks the broker every `interval` how many consumers the OpenAI queue has.
/// Each copy consumes it through one consumer, so that is the number of live copies, and
/// each keeps to an equal share of every limit.
///
/// The broker is the one thing every copy already shares, and it learns of a copy's
/// death on its own: a killed process's connection closes at once, a lost host's when its
/// AMQP heartbeats stop. Until a copy has been counted the others run a little above their
/// share; the server's 429s and `Retry-After`, which the limiter obeys, cover that gap
/// (docs/openai.md, "Copies share the limits").
public struct PeerCount: Service {
    let transport: any MessageTransport
    let queue: String
    let limiter: RateLimiter
    let interval: Duration
    let logger: Logger

    public init(transport: any MessageTransport, queue: String, limiter: RateLimiter, interval: Duration = .seconds(1), logger: Logger) {
        self.transport = transport
        self.queue = queue
        self.limiter = limiter
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var failing = false
        var last: Int?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let consumers = try await transport.inspectQueue(queue).consumerCount
                // Before this copy's own consumer is up, it counts itself.
                let copies = max(1, consumers)
                if copies != last {
                    logger.info("OpenAI copies sharing the limits", metadata: ["copies": "\(copies)", "messaging.destination.name": "\(queue)"])
                    last = copies
                }
                await limiter.share(among: copies)
                failing = false
            } catch {
                // The shares stay as they were: a broker that is down hands out no work either.
                if !failing {
                    logger.warning("cannot count the OpenAI copies; keeping the last share", metadata: ["error": "\(error)", "copies": "\(last ?? 1)"])
                    failing = true
                }
            }
            try? await Task.sleep(for: interval)
        }
    }
}
