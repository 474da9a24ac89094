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
        let document: [String: Any] = [
            "exchanges": exchanges.map { exchange in
                [
                    "name": exchange.name,
                    "vhost": vhost,
                    "type": exchange.kind.rawValue,
                    "durable": exchange.durable,
                    "auto_delete": exchange.autoDelete,
                    "internal": exchange.isInternal,
                    "arguments": Self.jsonObject(exchange.arguments),
                ] as [String: Any]
            },
            "queues": queues.map { queue in
                [
                    "name": queue.name,
                    "vhost": vhost,
                    "durable": queue.durable,
                    "auto_delete": queue.autoDelete,
                    "arguments": Self.jsonObject(queue.arguments),
                ] as [String: Any]
            },
            "bindings": bindings.map { binding in
                [
                    "source": binding.exchange,
                    "vhost": vhost,
                    "destination": binding.queue,
                    "destination_type": "queue",
                    "routing_key": binding.routingKey,
                    "arguments": Self.jsonObject(binding.arguments),
                ] as [String: Any]
            },
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// Reads the exchanges, queues and bindings of one vhost from a definitions document.
    /// Users, permissions, policies and other vhosts are ignored.
    public init(definitionsJSON data: Data, vhost: String = "/") throws {
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DefinitionsError(description: "definitions must be a JSON object with exchanges, queues and bindings")
        }
        func entries(_ key: String) throws -> [[String: Any]] {
            guard let list = (document[key] ?? [Any]()) as? [Any] else {
                throw DefinitionsError(description: "definitions: '\(key)' must be an array")
            }
            return try list.map { item in
                guard let entry = item as? [String: Any] else {
                    throw DefinitionsError(description: "definitions: every entry of '\(key)' must be an object")
                }
                return entry
            }.filter { ($0["vhost"] as? String ?? "/") == vhost }
        }
        func string(_ entry: [String: Any], _ key: String, in section: String) throws -> String {
            guard let value = entry[key] as? String else {
                throw DefinitionsError(description: "definitions: an entry of '\(section)' has no string '\(key)'")
            }
            return value
        }
        func arguments(_ entry: [String: Any]) throws -> FieldTable {
            try Self.fieldTable(entry["arguments"] as? [String: Any] ?? [:])
        }

        self.init()
        for entry in try entries("exchanges") {
            let kindName = try string(entry, "type", in: "exchanges")
            guard let kind = Exchange.Kind(rawValue: kindName) else {
                throw DefinitionsError(description: "definitions: exchange type '\(kindName)' is not one of direct, fanout, topic, headers")
            }
            exchanges.append(
                Exchange(
                    name: try string(entry, "name", in: "exchanges"),
                    kind: kind,
                    durable: entry["durable"] as? Bool ?? true,
                    autoDelete: entry["auto_delete"] as? Bool ?? false,
                    isInternal: entry["internal"] as? Bool ?? false,
                    arguments: try arguments(entry)
                )
            )
        }
        for entry in try entries("queues") {
            queues.append(
                Queue(
                    name: try string(entry, "name", in: "queues"),
                    durable: entry["durable"] as? Bool ?? true,
                    autoDelete: entry["auto_delete"] as? Bool ?? false,
                    arguments: try arguments(entry)
                )
            )
        }
        for entry in try entries("bindings") {
            bindings.append(
                Binding(
                    exchange: try string(entry, "source", in: "bindings"),
                    queue: try string(entry, "destination", in: "bindings"),
                    routingKey: entry["routing_key"] as? String ?? "",
                    arguments: try arguments(entry)
                )
            )
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

    private static func jsonObject(_ table: FieldTable) -> [String: Any] {
        table.mapValues(jsonValue)
    }

    private static func jsonValue(_ value: FieldValue) -> Any {
        switch value {
        case .bool(let value): return value
        case .int(let value): return value
        case .double(let value): return value
        case .string(let value): return value
        case .bytes(let value): return String(decoding: value, as: UTF8.self)
        case .timestamp(let value): return value
        case .array(let values): return values.map(jsonValue)
        case .table(let table): return jsonObject(table)
        case .void: return NSNull()
        }
    }

    private static func fieldTable(_ object: [String: Any]) throws -> FieldTable {
        try object.mapValues(fieldValue)
    }

    private static func fieldValue(_ value: Any) throws -> FieldValue {
        switch value {
        case let number as NSNumber:
            if number.isBoolean { return .bool(number.boolValue) }
            let double = number.doubleValue
            if double.rounded() == double, abs(double) < 9.0e18 { return .int(number.int64Value) }
            return .double(double)
        case let text as String: return .string(text)
        case let list as [Any]: return .array(try list.map(fieldValue))
        case let object as [String: Any]: return .table(try fieldTable(object))
        case is NSNull: return .void
        default:
            throw DefinitionsError(description: "definitions: argument value \(value) has no AMQP equivalent")
        }
    }
}

extension NSNumber {
    /// Whether JSONSerialization made this number from `true` or `false`: it gives
    /// booleans the `char` encoding and never uses it for numbers.
    fileprivate var isBoolean: Bool { String(cString: objCType) == "c" }
}
