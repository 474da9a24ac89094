/// A message to publish: where it goes, its properties and its body.
public struct AMQPMessage: Sendable, Equatable {
    /// The exchange to publish to; `""` is the default exchange, which routes by queue name.
    public var exchange: String
    public var routingKey: String
    public var properties: AMQPProperties
    public var body: [UInt8]
    /// Ask the broker to return the message if no queue takes it; `publish` then throws
    /// ``AMQPError/Code/unroutable`` instead of succeeding silently.
    public var mandatory: Bool

    public init(
        exchange: String = "",
        routingKey: String,
        properties: AMQPProperties = .persistent(),
        body: [UInt8],
        mandatory: Bool = true
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.body = body
        self.mandatory = mandatory
    }
}
