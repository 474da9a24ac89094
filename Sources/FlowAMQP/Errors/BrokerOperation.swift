/// What the client was doing when the broker (or the socket) said no: part of every error
/// the session raises, so the error can name the operation and the object involved, and so
/// code can tell a refused login from a refused declaration without reading the message.
enum BrokerOperation: Sendable, Equatable, CustomStringConvertible {
    case logIn
    case openChannel(UInt16)
    case enableConfirms
    case setPrefetch(UInt16)
    case declareExchange(String)
    case declareQueue(String)
    case bind(queue: String, exchange: String)
    case inspectQueue(String)
    case deleteQueue(String)
    case deleteExchange(String)
    case consume(queue: String)
    case cancelConsumer(tag: String)
    case publish(exchange: String)
    case settle(deliveryTag: UInt64)
    case readFrames
    /// The broker closed a channel on its own, about an earlier command on it.
    case useChannel(UInt16)
    /// The broker closed the connection on its own.
    case keepConnection

    /// The operation in words, as error messages put it ("could not declare queue 'x'").
    var description: String {
        switch self {
        case .logIn: return "log in"
        case .openChannel(let channel): return "open channel \(channel)"
        case .enableConfirms: return "enable publisher confirms"
        case .setPrefetch(let count): return "set prefetch to \(count)"
        case .declareExchange(let name): return "declare exchange '\(name)'"
        case .declareQueue(let name): return "declare queue '\(name)'"
        case .bind(let queue, let exchange): return "bind queue '\(queue)' to exchange '\(exchange)'"
        case .inspectQueue(let name): return "look up queue '\(name)'"
        case .deleteQueue(let name): return "delete queue '\(name)'"
        case .deleteExchange(let name): return "delete exchange '\(name)'"
        case .consume(let queue): return "consume from queue '\(queue)'"
        case .cancelConsumer(let tag): return "cancel consumer '\(tag)'"
        case .publish(let exchange): return "publish to exchange '\(exchange)'"
        case .settle(let deliveryTag): return "acknowledge delivery \(deliveryTag)"
        case .readFrames: return "read from the broker"
        case .useChannel(let channel): return "use channel \(channel)"
        case .keepConnection: return "keep the connection"
        }
    }

    /// The exchange the operation is about, when it names one.
    var exchange: String? {
        switch self {
        case .declareExchange(let name), .deleteExchange(let name), .publish(let name): return name
        case .bind(_, let exchange): return exchange
        default: return nil
        }
    }

    /// The queue the operation is about, when it names one.
    var queue: String? {
        switch self {
        case .declareQueue(let name), .inspectQueue(let name), .deleteQueue(let name), .consume(let name): return name
        case .bind(let queue, _): return queue
        default: return nil
        }
    }
}
