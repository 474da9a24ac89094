import Foundation

/// Reading and writing a topology in RabbitMQ's definitions format, the JSON that
/// `rabbitmqctl import_definitions`, the management UI and `load_definitions` understand.
extension Topology {
    /// An error in a definitions file.
    public struct DefinitionsError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The topology as a definitions document for one vhost, with stable ordering so the
    /// committed `broker/definitions.json` diff shows only real changes.
    public func definitionsJSON(vhost: String = "/") throws -> Data {
        let document = DefinitionsDocument(
            exchanges: exchanges.map { exchange in
                .init(
                    name: exchange.name, vhost: vhost, type: exchange.kind.rawValue, durable: exchange.durable,
                    autoDelete: exchange.autoDelete, internal: exchange.isInternal, arguments: exchange.arguments.mapValues(JSONValue.init)
                )
            },
            queues: queues.map { queue in
                .init(name: queue.name, vhost: vhost, durable: queue.durable, autoDelete: queue.autoDelete, arguments: queue.arguments.mapValues(JSONValue.init))
            },
            bindings: bindings.map { binding in
                .init(
                    source: binding.exchange, vhost: vhost, destination: binding.queue, destinationType: "queue",
                    routingKey: binding.routingKey, arguments: binding.arguments.mapValues(JSONValue.init)
                )
            }
        )
        return try FlowJSON.prettyEncoder.encode(document)
    }

    /// Reads the exchanges, queues and bindings of one vhost from a definitions document.
    /// Users, permissions, policies and other vhosts are ignored.
    public init(definitionsJSON data: Data, vhost: String = "/") throws {
        let document: DefinitionsDocument
        do {
            document = try FlowJSON.decode(DefinitionsDocument.self, from: data)
        } catch let error as DecodingError {
            throw DefinitionsError(description: "definitions must be a JSON object with exchanges, queues and bindings: \(FlowJSON.describe(error))")
        }
        func arguments(_ object: [String: JSONValue]?) throws -> FieldTable {
            try (object ?? [:]).mapValues(FieldValue.init(definitionsValue:))
        }

        self.init()
        for entry in document.exchanges ?? [] where (entry.vhost ?? "/") == vhost {
            guard let kind = Exchange.Kind(rawValue: entry.type) else {
                throw DefinitionsError(description: "definitions: exchange type '\(entry.type)' is not one of direct, fanout, topic, headers")
            }
            exchanges.append(
                Exchange(
                    name: entry.name, kind: kind, durable: entry.durable ?? true, autoDelete: entry.autoDelete ?? false,
                    isInternal: entry.internal ?? false, arguments: try arguments(entry.arguments)
                )
            )
        }
        for entry in document.queues ?? [] where (entry.vhost ?? "/") == vhost {
            queues.append(Queue(name: entry.name, durable: entry.durable ?? true, autoDelete: entry.autoDelete ?? false, arguments: try arguments(entry.arguments)))
        }
        for entry in document.bindings ?? [] where (entry.vhost ?? "/") == vhost {
            bindings.append(Binding(exchange: entry.source, queue: entry.destination, routingKey: entry.routingKey ?? "", arguments: try arguments(entry.arguments)))
        }
    }

    /// The topology with each list sorted by name, for order-insensitive comparison.
    public var sorted: Topology {
        Topology(
            exchanges: exchanges.sorted { $0.name < $1.name },
            queues: queues.sorted { $0.name < $1.name },
            bindings: bindings.sorted { ($0.exchange, $0.queue, $0.routingKey) < ($1.exchange, $1.queue, $1.routingKey) }
        )
    }
}

/// The part of RabbitMQ's definitions format a topology uses.
struct DefinitionsDocument: Codable {
    struct Exchange: Codable {
        var name: String
        var vhost: String?
        var type: String
        var durable: Bool?
        var autoDelete: Bool?
        var `internal`: Bool?
        var arguments: [String: JSONValue]?
    }

    struct Queue: Codable {
        var name: String
        var vhost: String?
        var durable: Bool?
        var autoDelete: Bool?
        var arguments: [String: JSONValue]?
    }

    struct Binding: Codable {
        var source: String
        var vhost: String?
        var destination: String
        var destinationType: String?
        var routingKey: String?
        var arguments: [String: JSONValue]?
    }

    var exchanges: [Exchange]?
    var queues: [Queue]?
    var bindings: [Binding]?
}

extension JSONValue {
    /// An AMQP field value as JSON: bytes as UTF-8 text, a timestamp as its seconds.
    init(_ field: FieldValue) {
        switch field {
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .integer(value)
        case .double(let value): self = .number(value)
        case .string(let value): self = .string(value)
        case .bytes(let value): self = .string(String(decoding: value, as: UTF8.self))
        case .timestamp(let value): self = value <= UInt64(Int64.max) ? .integer(Int64(value)) : .number(Double(value))
        case .array(let values): self = .array(values.map(JSONValue.init))
        case .table(let table): self = .object(table.mapValues(JSONValue.init))
        case .void: self = .null
        }
    }
}

extension FieldValue {
    /// A definitions argument as an AMQP field value: whole numbers become integers, as
    /// RabbitMQ reads them.
    init(definitionsValue value: JSONValue) throws {
        switch value {
        case .null: self = .void
        case .bool(let value): self = .bool(value)
        case .integer(let value): self = .int(value)
        case .number(let value): self = value.rounded() == value && abs(value) < 9.0e18 ? .int(Int64(value)) : .double(value)
        case .string(let value): self = .string(value)
        case .array(let values): self = .array(try values.map(FieldValue.init(definitionsValue:)))
        case .object(let object): self = .table(try object.mapValues(FieldValue.init(definitionsValue:)))
        }
    }
}
