import FlowTransport
import FlowCore
import Foundation

/// A message as one line of an export file: every property, every header with its AMQP
/// type kept (so an import restores it exactly), and the body in base64.
struct ExportedMessage: Codable {
    var messageID: String?
    var properties: [String: TaggedValue]
    var headers: [String: TaggedValue]
    var body: String


    init(_ delivery: AMQPDelivery) {
        let p = delivery.properties
        messageID = p.messageID
        var properties: [String: TaggedValue] = [:]
        func put(_ key: String, _ value: String?) { if let value { properties[key] = .string(value) } }
        put("content_type", p.contentType)
        put("content_encoding", p.contentEncoding)
        put("correlation_id", p.correlationID)
        put("reply_to", p.replyTo)
        put("expiration", p.expiration)
        put("message_id", p.messageID)
        put("type", p.type)
        put("user_id", p.userID)
        put("app_id", p.appID)
        if let value = p.deliveryMode { properties["delivery_mode"] = .int(Int64(value)) }
        if let value = p.priority { properties["priority"] = .int(Int64(value)) }
        if let value = p.timestamp { properties["timestamp"] = .timestamp(value) }
        self.properties = properties
        headers = (p.headers ?? [:]).mapValues(TaggedValue.init)
        body = Data(delivery.body).base64EncodedString()
    }

    var bodyBytes: [UInt8] { [UInt8](Data(base64Encoded: body) ?? Data()) }

    var amqpProperties: AMQPProperties {
        func string(_ key: String) -> String? { properties[key]?.fieldValue.stringValue }
        var result = AMQPProperties(
            contentType: string("content_type"), contentEncoding: string("content_encoding"),
            headers: headers.isEmpty ? nil : headers.mapValues(\.fieldValue),
            correlationID: string("correlation_id"), replyTo: string("reply_to"), expiration: string("expiration"),
            messageID: string("message_id"), type: string("type"), userID: string("user_id"), appID: string("app_id")
        )
        result.deliveryMode = properties["delivery_mode"]?.fieldValue.integerValue.map { UInt8(clamping: $0) }
        result.priority = properties["priority"]?.fieldValue.integerValue.map { UInt8(clamping: $0) }
        if case .timestamp(let value)? = properties["timestamp"]?.fieldValue { result.timestamp = value }
        // The imported copy goes into the dead-letter queue, which must keep it.
        result.expiration = nil
        return result
    }

    func jsonLine() throws -> String {
        try FlowJSON.encodeText(self)
    }
}

/// A field value with its AMQP type: `{"int": 3}`, `{"string": "x"}`, `{"table": {...}}`.
indirect enum TaggedValue: Codable {
    case bool(Bool), int(Int64), double(Double), string(String), bytes(String), timestamp(UInt64)
    case array([TaggedValue]), table([String: TaggedValue]), void

    init(_ value: FieldValue) {
        switch value {
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .string(let value): self = .string(value)
        case .bytes(let value): self = .bytes(Data(value).base64EncodedString())
        case .timestamp(let value): self = .timestamp(value)
        case .array(let values): self = .array(values.map(TaggedValue.init))
        case .table(let table): self = .table(table.mapValues(TaggedValue.init))
        case .void: self = .void
        }
    }

    var fieldValue: FieldValue {
        switch self {
        case .bool(let value): return .bool(value)
        case .int(let value): return .int(value)
        case .double(let value): return .double(value)
        case .string(let value): return .string(value)
        case .bytes(let value): return .bytes([UInt8](Data(base64Encoded: value) ?? Data()))
        case .timestamp(let value): return .timestamp(value)
        case .array(let values): return .array(values.map(\.fieldValue))
        case .table(let table): return .table(table.mapValues(\.fieldValue))
        case .void: return .void
        }
    }
}
