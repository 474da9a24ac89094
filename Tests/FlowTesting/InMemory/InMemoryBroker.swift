import FlowCore
import FlowTransport
import Synchronization

/// A message broker in memory, with RabbitMQ's routing and settlement rules as far as the
/// system relies on them: direct, fanout and headers exchanges, the default exchange,
/// mandatory returns, manual acknowledgement with prefetch, requeue with `redelivered`,
/// quorum queues' delivery limit, dead-lettering with `x-death`, and queues with a message
/// TTL (the retry tiers).
///
/// Tests connect any number of ``InMemoryTransport``s to one broker, and tell it to fail:
/// drop a connection (its unsettled deliveries come back, redelivered), refuse, lose or
/// duplicate publishes (``PublishFault``). Nothing here touches the network or a clock, so
/// the coordinator and the worker runtime can be tested in milliseconds.
///
/// Queues with a TTL hold their messages until ``expireDelayedMessages()``, or pass them on
/// at once when ``delaysExpireAtOnce`` is set: the test says when time has passed.
public final class InMemoryBroker: Sendable {
    let state = Mutex(State())

    public init(delaysExpireAtOnce: Bool = true) {
        state.withLock { $0.delaysExpireAtOnce = delaysExpireAtOnce }
    }

    /// A new connection to this broker.
    public func connect(name: String = "in-memory") -> InMemoryTransport {
        let id = state.withLock { state in
            state.nextConnectionID += 1
            state.connections[state.nextConnectionID] = ConnectionState(name: name)
            return state.nextConnectionID
        }
        return InMemoryTransport(broker: self, connectionID: id)
    }

    // MARK: Looking inside

    /// The messages ready in a queue, oldest first (delivered but unsettled ones not included).
    public func messages(in queue: String) -> [AMQPMessage] {
        state.withLock { $0.queues[queue]?.ready.map(\.message) ?? [] }
    }

    /// How many deliveries of a queue are unsettled.
    public func unsettledCount(in queue: String) -> Int {
        state.withLock { state in state.consumers.values.filter { $0.queue == queue }.reduce(0) { $0 + $1.unsettled.count } }
    }

    /// Every message the broker accepted from a publisher, in order.
    public var published: [AMQPMessage] {
        state.withLock { $0.published }
    }

    /// Removes every message ready in a queue and returns them.
    @discardableResult
    public func purge(_ queue: String) -> [AMQPMessage] {
        state.withLock { state in
            let messages = state.queues[queue]?.ready.map(\.message) ?? []
            state.queues[queue]?.ready.removeAll()
            return messages
        }
    }

    /// Moves every message waiting in a queue with a TTL on to its dead-letter exchange, as
    /// if the TTL had passed.
    public func expireDelayedMessages() {
        perform { state in
            for name in state.queues.keys.sorted() where state.queues[name]?.declaration.arguments["x-message-ttl"] != nil {
                let expired = state.queues[name]!.ready
                state.queues[name]!.ready.removeAll()
                for message in expired { state.deadLetter(message, from: name, reason: "expired") }
            }
        }
    }

    /// Runs a change of state, then hands out the deliveries it made possible, outside the lock.
    func perform<Result>(_ change: (inout State) throws -> Result) rethrows -> Result {
        let (result, handOut) = try state.withLock { state in
            let result = try change(&state)
            return (result, state.dispatch())
        }
        for pending in handOut {
            let stored = pending.message
            pending.continuation.yield(
                AMQPDelivery(
                    exchange: stored.message.exchange, routingKey: stored.message.routingKey, properties: stored.message.properties,
                    body: stored.message.body, redelivered: stored.deliveries > 1, deliveryTag: pending.deliveryTag,
                    settler: InMemorySettler(broker: self, consumerID: pending.consumerID, generation: pending.generation)
                )
            )
        }
        return result
    }
}

extension InMemoryBroker {
    struct StoredMessage {
        var message: AMQPMessage
        /// How many times a consumer received it.
        var deliveries = 0
    }

    struct QueueState {
        var declaration: Topology.Queue
        var ready: [StoredMessage] = []
        /// The consumer that takes the next delivery, by turn.
        var turn = 0
    }

    struct ConsumerState {
        var queue: String
        var prefetch: Int
        var connectionID: Int
        var continuation: AsyncThrowingStream<AMQPDelivery, any Error>.Continuation
        /// Stopped consumers take no new deliveries but may settle what they have.
        var stopped = false
        var unsettled: [UInt64: StoredMessage] = [:]
    }

    struct PendingDelivery {
        var continuation: AsyncThrowingStream<AMQPDelivery, any Error>.Continuation
        var message: StoredMessage
        var deliveryTag: UInt64
        var consumerID: Int
        var generation: UInt64
    }

    struct ConnectionState {
        var name: String
        var generation: UInt64 = 1
        var isConnected = true
        var recoveryCount = 0
        var closed = false
    }

    struct State {
        var delaysExpireAtOnce = true
        var exchanges: [String: Topology.Exchange] = [:]
        var queues: [String: QueueState] = [:]
        var bindings: [Topology.Binding] = []
        var consumers: [Int: ConsumerState] = [:]
        var connections: [Int: ConnectionState] = [:]
        var faults: [FaultRule] = []
        var published: [AMQPMessage] = []
        var nextConnectionID = 0
        var nextConsumerID = 0
        var nextDeliveryTag: UInt64 = 0

        mutating func declare(_ topology: Topology) {
            for exchange in topology.exchanges { exchanges[exchange.name] = exchange }
            for queue in topology.queues where queues[queue.name] == nil { queues[queue.name] = QueueState(declaration: queue) }
            for binding in topology.bindings where !bindings.contains(binding) { bindings.append(binding) }
        }

        /// The queues a message published to `exchange` with `routingKey` and `headers` reaches.
        func route(exchange: String, routingKey: String, headers: FieldTable?) throws -> [String] {
            if exchange.isEmpty { return queues[routingKey] == nil ? [] : [routingKey] }
            guard let declared = exchanges[exchange] else {
                throw AMQPError(.notFound, "NOT_FOUND - no exchange '\(exchange)' in vhost '/'")
            }
            return bindings.filter { $0.exchange == exchange }.filter { binding in
                switch declared.kind {
                case .direct, .topic: return binding.routingKey == routingKey
                case .fanout: return true
                case .headers: return Self.headersMatch(binding.arguments, headers ?? [:])
                }
            }.map(\.queue)
        }

        static func headersMatch(_ arguments: FieldTable, _ headers: FieldTable) -> Bool {
            let wanted = arguments.filter { !$0.key.hasPrefix("x-") }
            let matches = wanted.filter { headers[$0.key]?.stringValue == $0.value.stringValue }
            return arguments["x-match"]?.stringValue == "any" ? !matches.isEmpty : matches.count == wanted.count
        }

        mutating func enqueue(_ message: StoredMessage, in queue: String) {
            guard let declaration = queues[queue]?.declaration else { return }
            if declaration.arguments["x-message-ttl"] != nil, delaysExpireAtOnce {
                deadLetter(message, from: queue, reason: "expired")
            } else {
                queues[queue]!.ready.append(message)
            }
        }

        /// Sends a message on through its queue's dead-letter exchange, with the `x-death`
        /// entry RabbitMQ adds; dropped when the queue has none.
        mutating func deadLetter(_ stored: StoredMessage, from queue: String, reason: String) {
            guard let arguments = queues[queue]?.declaration.arguments, let exchange = arguments["x-dead-letter-exchange"]?.stringValue else { return }
            var message = stored.message
            var headers = message.properties.headers ?? [:]
            var deaths: [FieldValue] = []
            if case .array(let earlier)? = headers["x-death"] { deaths = earlier }
            deaths.insert(
                .table([
                    "reason": .string(reason), "queue": .string(queue), "count": .int(1),
                    "exchange": .string(message.exchange), "routing-keys": .array([.string(message.routingKey)]),
                ]),
                at: 0
            )
            headers["x-death"] = .array(deaths)
            if headers["x-first-death-reason"] == nil {
                headers["x-first-death-reason"] = .string(reason)
                headers["x-first-death-queue"] = .string(queue)
                headers["x-first-death-exchange"] = .string(message.exchange)
            }
            message.properties.headers = headers
            if reason == "expired" { message.properties.expiration = nil }
            let routingKey = arguments["x-dead-letter-routing-key"]?.stringValue ?? message.routingKey
            message.exchange = exchange
            for target in (try? route(exchange: exchange, routingKey: routingKey, headers: headers)) ?? [] {
                enqueue(StoredMessage(message: message), in: target)
            }
        }

        /// Hands ready messages to consumers with room, in turn.
        mutating func dispatch() -> [PendingDelivery] {
            var handOut: [PendingDelivery] = []
            for name in queues.keys.sorted() {
                while !queues[name]!.ready.isEmpty {
                    let takers = consumers.keys.sorted().filter { id in
                        let consumer = consumers[id]!
                        return consumer.queue == name && !consumer.stopped && consumer.unsettled.count < consumer.prefetch
                            && connections[consumer.connectionID]?.isConnected == true
                    }
                    guard !takers.isEmpty else { break }
                    let consumerID = takers[queues[name]!.turn % takers.count]
                    queues[name]!.turn += 1
                    var stored = queues[name]!.ready.removeFirst()
                    stored.deliveries += 1
                    nextDeliveryTag += 1
                    var consumer = consumers[consumerID]!
                    consumer.unsettled[nextDeliveryTag] = stored
                    consumers[consumerID] = consumer
                    handOut.append(
                        PendingDelivery(
                            continuation: consumer.continuation, message: stored, deliveryTag: nextDeliveryTag, consumerID: consumerID,
                            generation: connections[consumer.connectionID]!.generation
                        )
                    )
                }
            }
            return handOut
        }

        /// Returns a consumer's unsettled deliveries to the head of their queue, redelivered.
        mutating func requeueUnsettled(of consumerID: Int) {
            guard let consumer = consumers[consumerID] else { return }
            let returned = consumer.unsettled.sorted { $0.key > $1.key }.map(\.value)
            consumers[consumerID]!.unsettled.removeAll()
            for message in returned { giveBack(message, to: consumer.queue) }
        }

        /// Puts a returned delivery back at the head of its queue, unless it was returned more
        /// often than the queue's delivery limit allows: then it is dead-lettered, as a quorum
        /// queue does, so a message that crashes every consumer cannot loop forever.
        mutating func giveBack(_ message: StoredMessage, to queue: String) {
            if let limit = queues[queue]?.declaration.arguments["x-delivery-limit"]?.integerValue, message.deliveries > limit {
                deadLetter(message, from: queue, reason: "delivery_limit")
            } else {
                queues[queue]?.ready.insert(message, at: 0)
            }
        }
    }
}
