/// Exchanges, queues and bindings on one vhost: what the system needs to exist on the broker.
///
/// The code declares a topology idempotently at start-up, and `broker/definitions.json`
/// holds the same topology in RabbitMQ's definitions format; a test proves they agree.
public struct Topology: Sendable, Hashable {
    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]

    public init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    /// An exchange declaration.
    public struct Exchange: Sendable, Hashable {
        /// AMQP exchange types.
        public enum Kind: String, Sendable, Hashable {
            case direct, fanout, topic, headers
        }

        public var name: String
        public var kind: Kind
        public var durable: Bool
        public var autoDelete: Bool
        public var isInternal: Bool
        public var arguments: FieldTable

        public init(
            name: String,
            kind: Kind,
            durable: Bool = true,
            autoDelete: Bool = false,
            isInternal: Bool = false,
            arguments: FieldTable = [:]
        ) {
            self.name = name
            self.kind = kind
            self.durable = durable
            self.autoDelete = autoDelete
            self.isInternal = isInternal
            self.arguments = arguments
        }
    }

    /// A queue declaration. Broker behaviour (type, dead-lettering, limits) is in `arguments`.
    public struct Queue: Sendable, Hashable {
        public var name: String
        public var durable: Bool
        public var exclusive: Bool
        public var autoDelete: Bool
        public var arguments: FieldTable

        public init(
            name: String,
            durable: Bool = true,
            exclusive: Bool = false,
            autoDelete: Bool = false,
            arguments: FieldTable = [:]
        ) {
            self.name = name
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
            self.arguments = arguments
        }
    }

    /// A binding of a queue to an exchange.
    public struct Binding: Sendable, Hashable {
        public var exchange: String
        public var queue: String
        public var routingKey: String
        public var arguments: FieldTable

        public init(exchange: String, queue: String, routingKey: String, arguments: FieldTable = [:]) {
            self.exchange = exchange
            self.queue = queue
            self.routingKey = routingKey
            self.arguments = arguments
        }
    }

    /// One queue of this topology with what it needs to receive messages: its bindings and
    /// the exchanges they bind it to. What a consumer declares again when its queue vanished.
    public func restricted(toQueue name: String) -> Topology {
        let bindings = bindings.filter { $0.queue == name }
        let exchangeNames = Set(bindings.map(\.exchange))
        return Topology(
            exchanges: exchanges.filter { exchangeNames.contains($0.name) },
            queues: queues.filter { $0.name == name },
            bindings: bindings
        )
    }

    /// The same topology with every name passed through `rename`, for tests that need
    /// their own copy beside the real one on a shared broker.
    public func renamed(_ rename: (String) -> String) -> Topology {
        func renameValue(_ value: FieldValue) -> FieldValue {
            if case .string(let text) = value, !text.isEmpty { return .string(rename(text)) }
            return value
        }
        func renameArguments(_ arguments: FieldTable) -> FieldTable {
            var result = arguments
            for key in ["x-dead-letter-exchange", "x-dead-letter-routing-key"] {
                if let value = result[key] { result[key] = renameValue(value) }
            }
            return result
        }
        return Topology(
            exchanges: exchanges.map { exchange in
                var exchange = exchange
                exchange.name = rename(exchange.name)
                return exchange
            },
            queues: queues.map { queue in
                var queue = queue
                queue.name = rename(queue.name)
                queue.arguments = renameArguments(queue.arguments)
                return queue
            },
            bindings: bindings.map { binding in
                var binding = binding
                binding.exchange = rename(binding.exchange)
                binding.queue = rename(binding.queue)
                if binding.routingKey != "" { binding.routingKey = rename(binding.routingKey) }
                return binding
            }
        )
    }
}
