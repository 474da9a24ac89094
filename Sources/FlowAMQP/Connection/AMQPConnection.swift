import FlowCore
import Logging

/// A connection to RabbitMQ that survives the broker: it reconnects after a drop, declares
/// its topology again, resumes its consumers and re-sends what was not confirmed.
///
/// rabbitmq-c is not thread-safe, so one dedicated thread owns the C connection; every
/// method here may be called from any task and waits for that thread's answer.
public final class AMQPConnection: MessageTransport {
    private let loop: ConnectionLoop

    /// The configuration the connection was opened with.
    public var configuration: AMQPConfiguration { loop.configuration }

    /// Whether the connection is open now; false while it reconnects and after `close()`.
    public var isConnected: Bool { loop.isConnected }

    /// The broker node the connection is open to now; nil while it reconnects.
    public var endpoint: AMQPConfiguration.Endpoint? { loop.endpoint }

    /// How many times the connection was re-established after dropping.
    public var recoveryCount: Int { loop.recoveryCount }

    public var brokerDescription: String { loop.configuration.redactedURL }

    private init(loop: ConnectionLoop) {
        self.loop = loop
    }

    /// Opens a connection, or throws an ``AMQPError`` that says why it could not
    /// (nothing listening, bad credentials, missing vhost, TLS failure).
    public static func connect(_ configuration: AMQPConfiguration, logger: Logger) async throws -> AMQPConnection {
        let loop = try ConnectionLoop(configuration: configuration, logger: logger)
        try await loop.start()
        return AMQPConnection(loop: loop)
    }

    /// Publishes a message and returns once the broker has confirmed it (it is then on disk
    /// for persistent messages in durable queues).
    ///
    /// Throws ``AMQPError/Code/unroutable`` when a `mandatory` message reached no queue and
    /// ``AMQPError/Code/publishNacked`` when the broker refused it. When the connection
    /// drops before the confirm, the message is published again on the next connection
    /// (so it may arrive twice, which message-id idempotency absorbs); pass
    /// `retryOnReconnect: false` to get ``AMQPError/Code/connectionLost`` instead.
    ///
    /// Concurrent calls are pipelined: many messages are in flight with one confirm each.
    public func publish(_ message: AMQPMessage, retryOnReconnect: Bool) async throws {
        try await withCheckedThrowingContinuation { continuation in
            loop.submit(.publish(.init(message: message, retryOnReconnect: retryOnReconnect, continuation: continuation)))
        }
    }

    /// Declares exchanges, queues and bindings idempotently. The topology is remembered and
    /// declared again after every reconnection.
    public func declare(_ topology: Topology) async throws {
        try await withCheckedThrowingContinuation { continuation in
            loop.submit(.declare(topology, remember: true, continuation))
        }
    }

    /// Starts consuming a queue with manual acknowledgements. At most `prefetch` deliveries
    /// are unacknowledged at once. The consumer resumes by itself after a reconnection;
    /// deliveries of the dropped connection can no longer be settled (the broker
    /// redelivers them).
    public func consume(queue: String, prefetch: UInt16) async throws -> AMQPConsumer {
        let (stream, continuation) = AsyncThrowingStream<AMQPDelivery, any Error>.makeStream()
        let record = ConnectionLoop.ConsumerRecord(queue: queue, prefetch: prefetch, continuation: continuation)
        let loop = self.loop
        try await withCheckedThrowingContinuation { (started: CheckedContinuation<Void, any Error>) in
            loop.submit(.consume(record, started))
        }
        continuation.onTermination = { _ in loop.submit(.cancelConsumer(record, explicit: false)) }
        return AMQPConsumer(
            stream: stream,
            cancel: { loop.submit(.cancelConsumer(record, explicit: true)) },
            stop: {
                await withCheckedContinuation { continuation in loop.submit(.stopConsumer(record, continuation)) }
            }
        )
    }

    /// The number of ready messages and consumers of a queue; throws ``AMQPError/Code/notFound``
    /// when it does not exist.
    public func inspectQueue(_ name: String) async throws -> QueueStatus {
        try await withCheckedThrowingContinuation { continuation in
            loop.submit(.inspectQueue(name, continuation))
        }
    }

    /// Deletes a queue and returns how many messages it held.
    @discardableResult
    public func deleteQueue(_ name: String) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            loop.submit(.deleteQueue(name, continuation))
        }
    }

    /// Deletes an exchange.
    public func deleteExchange(_ name: String) async throws {
        try await withCheckedThrowingContinuation { continuation in
            loop.submit(.deleteExchange(name, continuation))
        }
    }

    /// Waits for outstanding confirms, then closes the connection and ends its consumers.
    public func close() async {
        await withCheckedContinuation { continuation in
            loop.submit(.close(continuation))
        }
    }
}
