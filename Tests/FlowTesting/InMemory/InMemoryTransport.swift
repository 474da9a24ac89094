import FlowCore
import FlowTransport

/// One connection to an ``InMemoryBroker``, with the ``MessageTransport`` contract of
/// `AMQPConnection`: confirmed publishes, mandatory returns, consumers that resume after
/// the connection drops, and settles of a dropped connection's deliveries that fail with
/// ``AMQPError/Code/staleDelivery``.
public struct InMemoryTransport: MessageTransport {
    let broker: InMemoryBroker
    let connectionID: Int

    public func publish(_ message: AMQPMessage, retryOnReconnect: Bool) async throws {
        while !isConnected {
            guard retryOnReconnect else { throw AMQPError(.connectionLost, "the in-memory connection is down and the publish may not be retried") }
            if connection.closed { throw AMQPError(.closed, "the in-memory connection is closed") }
            try await Task.sleep(for: .milliseconds(1))
        }
        try broker.perform { state in
            if state.connections[connectionID]!.closed { throw AMQPError(.closed, "the in-memory connection is closed") }
            let effect = state.takeFault(for: message)
            if case .refuse(let error) = effect { throw error }
            let targets = try state.route(exchange: message.exchange, routingKey: message.routingKey, headers: message.properties.headers)
            if targets.isEmpty, message.mandatory {
                throw AMQPError(.unroutable, "the broker returned the message to '\(message.exchange)' with routing key '\(message.routingKey)': 312 NO_ROUTE")
            }
            state.published.append(message)
            if case .lose = effect { return }
            let copies = effect == nil ? 1 : 2
            for _ in 0..<copies {
                for target in targets { state.enqueue(InMemoryBroker.StoredMessage(message: message), in: target) }
            }
            if case .dropConnectionBeforeConfirm = effect { state.drop(connectionID) }
        }
    }

    public func declare(_ topology: Topology) async throws {
        broker.perform { $0.declare(topology) }
    }

    public func consume(queue: String, prefetch: UInt16) async throws -> AMQPConsumer {
        let (stream, continuation) = AsyncThrowingStream<AMQPDelivery, any Error>.makeStream()
        let broker = self.broker
        let consumerID = try broker.perform { state in
            guard state.queues[queue] != nil else { throw AMQPError(.notFound, "NOT_FOUND - no queue '\(queue)' in vhost '/'") }
            state.nextConsumerID += 1
            state.consumers[state.nextConsumerID] = InMemoryBroker.ConsumerState(
                queue: queue, prefetch: max(Int(prefetch), prefetch == 0 ? Int.max : 1), connectionID: connectionID, continuation: continuation
            )
            return state.nextConsumerID
        }
        // A consumer given up (its task cancelled, or `cancel()`) closes its channel: what it
        // had not settled goes back to the queue.
        let close: @Sendable () -> Void = {
            broker.perform { state in
                state.requeueUnsettled(of: consumerID)
                state.consumers[consumerID] = nil
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            broker.perform { state in
                guard state.consumers[consumerID]?.stopped == false else { return }
                state.requeueUnsettled(of: consumerID)
                state.consumers[consumerID] = nil
            }
        }
        return AMQPConsumer(
            stream: stream,
            cancel: close,
            stop: {
                broker.perform { state in state.consumers[consumerID]?.stopped = true }
                continuation.finish()
            }
        )
    }

    public func inspectQueue(_ name: String) async throws -> QueueStatus {
        try broker.state.withLock { state in
            guard let queue = state.queues[name] else { throw AMQPError(.notFound, "NOT_FOUND - no queue '\(name)' in vhost '/'") }
            let consumers = state.consumers.values.filter { $0.queue == name && !$0.stopped }.count
            return QueueStatus(name: name, messageCount: queue.ready.count, consumerCount: consumers)
        }
    }

    public var isConnected: Bool { connection.isConnected && !connection.closed }

    public var recoveryCount: Int { connection.recoveryCount }

    public var brokerDescription: String { "memory://\(connection.name)" }

    private var connection: InMemoryBroker.ConnectionState {
        broker.state.withLock { $0.connections[connectionID]! }
    }

    // MARK: Failures on demand

    /// The connection drops and comes back at once: deliveries not yet settled go back to
    /// their queues (redelivered), and settling them now throws ``AMQPError/Code/staleDelivery``.
    public func drop() {
        broker.perform { $0.drop(connectionID) }
    }

    /// The connection goes down until ``reconnect()``: consumers receive nothing, publishes
    /// wait (or throw when they may not be retried), unsettled deliveries go back.
    public func disconnect() {
        broker.perform { state in
            state.drop(connectionID)
            state.connections[connectionID]!.isConnected = false
        }
    }

    public func reconnect() {
        broker.perform { state in state.connections[connectionID]!.isConnected = true }
    }

    /// Closes the connection: its consumers end and what they had not settled goes back.
    public func close() {
        let continuations = broker.perform { state in
            state.connections[connectionID]!.closed = true
            let mine = state.consumers.filter { $0.value.connectionID == connectionID }
            for id in mine.keys {
                state.requeueUnsettled(of: id)
                state.consumers[id] = nil
            }
            return mine.values.map(\.continuation)
        }
        for continuation in continuations { continuation.finish() }
    }
}

/// Settles one delivery of an in-memory consumer, on the connection generation it came on.
struct InMemorySettler: DeliverySettler {
    let broker: InMemoryBroker
    let consumerID: Int
    let generation: UInt64

    func settle(_ settlement: AMQPDelivery.Settlement, deliveryTag: UInt64) async throws {
        try broker.perform { state in
            guard let consumer = state.consumers[consumerID], state.connections[consumer.connectionID]?.generation == generation else {
                throw AMQPError(.staleDelivery, "delivery \(deliveryTag) came on a connection that has since dropped; the broker delivers it again")
            }
            guard let stored = state.consumers[consumerID]!.unsettled.removeValue(forKey: deliveryTag) else {
                throw AMQPError(.brokerError, "PRECONDITION_FAILED - unknown delivery tag \(deliveryTag): a delivery was settled twice")
            }
            switch settlement {
            case .ack:
                break
            case .nack(requeue: true), .reject(requeue: true):
                state.giveBack(stored, to: consumer.queue)
            case .nack(requeue: false), .reject(requeue: false):
                state.deadLetter(stored, from: consumer.queue, reason: "rejected")
            }
        }
    }
}
