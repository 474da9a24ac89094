/// Settles a delivery on the channel and connection generation it arrived on: after a
/// reconnection its tag means nothing, and the loop answers ``AMQPError/Code/staleDelivery``.
struct ChannelSettler: DeliverySettler {
    let loop: ConnectionLoop
    let channel: UInt16
    let generation: UInt64

    func settle(_ settlement: AMQPDelivery.Settlement, deliveryTag: UInt64) async throws {
        try await loop.settle(settlement, deliveryTag: deliveryTag, channel: channel, generation: generation)
    }
}
