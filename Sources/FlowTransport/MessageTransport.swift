import FlowCore

/// What the worker runtime and the coordinator need from a message broker: confirmed
/// publishes, consumers with manual settlement, the topology, and whether the connection is
/// up. `FlowAMQP`'s `AMQPConnection` is the one used in production; `FlowTesting` has an
/// in-memory one that can also drop, duplicate, redeliver and refuse messages.
///
/// The contract every implementation keeps:
/// - ``publish(_:retryOnReconnect:)`` returns only once the broker holds the message. It
///   throws ``AMQPError/Code/unroutable`` for a mandatory message no queue takes, and
///   ``AMQPError/Code/publishNacked`` when the broker refuses it. Across a reconnection a
///   message may arrive twice, never not at all (message-id idempotency absorbs the repeat).
/// - A consumer's deliveries are settled exactly once each. Settling a delivery of a
///   connection that has since dropped throws ``AMQPError/Code/staleDelivery``; the broker
///   redelivers it with `redelivered` set.
/// - Consumers resume by themselves after a reconnection; their sequence throws only when
///   the broker ends them for good (the queue was deleted).
public protocol MessageTransport: Sendable {
    /// Publishes a message and returns once the broker has confirmed it.
    func publish(_ message: AMQPMessage, retryOnReconnect: Bool) async throws

    /// Declares exchanges, queues and bindings idempotently, and again after every reconnection.
    func declare(_ topology: Topology) async throws

    /// Starts consuming a queue with manual settlement and at most `prefetch` unsettled deliveries.
    func consume(queue: String, prefetch: UInt16) async throws -> AMQPConsumer

    /// The number of ready messages and consumers of a queue; throws ``AMQPError/Code/notFound``
    /// when it does not exist.
    func inspectQueue(_ name: String) async throws -> QueueStatus

    /// Whether the connection is open now.
    var isConnected: Bool { get }

    /// How many times the connection was re-established after dropping.
    var recoveryCount: Int { get }

    /// The broker's address as logs and health reports may show it (no password).
    var brokerDescription: String { get }
}

extension MessageTransport {
    /// Publishes a message, re-sent after a reconnection if it was not confirmed.
    public func publish(_ message: AMQPMessage) async throws {
        try await publish(message, retryOnReconnect: true)
    }
}

/// What the broker reported about a queue.
public struct QueueStatus: Sendable, Equatable {
    public var name: String
    /// Messages ready for delivery (not counting those delivered and not yet acknowledged).
    public var messageCount: Int
    public var consumerCount: Int

    public init(name: String, messageCount: Int, consumerCount: Int) {
        self.name = name
        self.messageCount = messageCount
        self.consumerCount = consumerCount
    }
}
