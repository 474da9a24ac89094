/// A message delivered to a consumer. Settle it exactly once with ``ack()``, ``nack(requeue:)``
/// or ``reject(requeue:)``; each may be called from any task.
public struct AMQPDelivery: Sendable {
    public var exchange: String
    public var routingKey: String
    public var properties: AMQPProperties
    public var body: [UInt8]
    /// Whether the broker delivered this message before (to this or another consumer).
    public var redelivered: Bool
    /// The broker's tag for this delivery on its channel.
    public var deliveryTag: UInt64

    private let settler: any DeliverySettler

    /// Made by a transport: `settler` carries the delivery's outcome back to where it came from.
    public init(
        exchange: String, routingKey: String, properties: AMQPProperties, body: [UInt8], redelivered: Bool, deliveryTag: UInt64,
        settler: any DeliverySettler
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.body = body
        self.redelivered = redelivered
        self.deliveryTag = deliveryTag
        self.settler = settler
    }

    /// How a delivery is settled.
    public enum Settlement: Sendable, Equatable {
        case ack
        case nack(requeue: Bool)
        case reject(requeue: Bool)
    }

    /// Tells the broker the message is handled and may be deleted.
    public func ack() async throws {
        try await settler.settle(.ack, deliveryTag: deliveryTag)
    }

    /// Tells the broker the message was not handled; with `requeue: false` a queue that has a
    /// dead-letter exchange dead-letters it with reason `rejected`.
    public func nack(requeue: Bool) async throws {
        try await settler.settle(.nack(requeue: requeue), deliveryTag: deliveryTag)
    }

    /// Same effect as ``nack(requeue:)`` for one message, with `basic.reject`.
    public func reject(requeue: Bool) async throws {
        try await settler.settle(.reject(requeue: requeue), deliveryTag: deliveryTag)
    }
}

/// Where a delivery's settlement goes: for AMQP, its connection, channel and the connection
/// generation it arrived on (tags mean nothing on a later connection).
///
/// A settle the transport can no longer carry out because the delivery's connection has
/// dropped throws ``AMQPError/Code/staleDelivery``: the broker delivers the message again.
public protocol DeliverySettler: Sendable {
    func settle(_ settlement: AMQPDelivery.Settlement, deliveryTag: UInt64) async throws
}
