/// An error from the AMQP transport: a ``Code`` to switch on and a message a person can act on.
public struct AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for programs.
    public enum Code: String, Sendable, Equatable {
        /// The URL could not be parsed or names an unsupported scheme.
        case invalidURL
        /// Nothing answered at the broker's address.
        case brokerUnreachable
        /// The TLS handshake or certificate check failed.
        case tlsFailure
        /// The broker refused the user name or password.
        case accessRefused
        /// The vhost does not exist or the user may not use it.
        case vhostNotAllowed
        /// A queue or exchange the operation needs does not exist.
        case notFound
        /// A declaration conflicts with what already exists on the broker.
        case preconditionFailed
        /// The broker confirmed it could not take a published message (`basic.nack`).
        case publishNacked
        /// A `mandatory` message matched no queue and came back (`basic.return`).
        case unroutable
        /// The connection dropped before a publish was confirmed and it may not be retried.
        case connectionLost
        /// An acknowledgement was sent for a delivery of a connection that has since dropped;
        /// the broker redelivers such messages by itself.
        case staleDelivery
        /// The connection was closed by its owner.
        case closed
        /// The broker closed a channel or the connection for another reason.
        case brokerError
        /// rabbitmq-c reported a failure of its own (socket, framing, timeouts).
        case protocolFailure
    }

    public var code: Code
    public var message: String
    /// The AMQP reply code of the broker's `channel.close` or `connection.close`, when it sent one.
    public var replyCode: UInt16?
    /// The exchange the error is about, when it is about one.
    public var exchange: String?
    /// The queue the error is about, when it is about one.
    public var queue: String?

    public init(_ code: Code, _ message: String, replyCode: UInt16? = nil, exchange: String? = nil, queue: String? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
        self.exchange = exchange
        self.queue = queue
    }

    public var description: String { message }
}
