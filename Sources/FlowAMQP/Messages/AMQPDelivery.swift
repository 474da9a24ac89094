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

    let settlement: DeliverySettlement

    /// Tells the broker the message is handled and may be deleted.
    public func ack() async throws {
        try await settlement.settle(.ack)
    }

    /// Tells the broker the message was not handled; with `requeue: false` a queue that has a
    /// dead-letter exchange dead-letters it with reason `rejected`.
    public func nack(requeue: Bool) async throws {
        try await settlement.settle(.nack(requeue: requeue))
    }

    /// Same effect as ``nack(requeue:)`` for one message, with `basic.reject`.
    public func reject(requeue: Bool) async throws {
        try await settlement.settle(.reject(requeue: requeue))
    }
}

/// Where a delivery's acknowledgement must go: its connection loop, channel and the
/// connection generation it arrived on (tags mean nothing on a later connection).
struct DeliverySettlement: Sendable {
    enum Kind: Sendable {
        case ack
        case nack(requeue: Bool)
        case reject(requeue: Bool)
    }

    let loop: ConnectionLoop
    let channel: UInt16
    let generation: UInt64
    let deliveryTag: UInt64

    func settle(_ kind: Kind) async throws {
        try await loop.settle(kind, deliveryTag: deliveryTag, channel: channel, generation: generation)
    }
}
