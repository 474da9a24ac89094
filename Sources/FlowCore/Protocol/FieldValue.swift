import Foundation

/// A value in an AMQP field table (message headers, queue arguments).
///
/// The core keeps its own type so that code above the transport never sees rabbitmq-c's
/// `amqp_field_value_t`; the transport converts at its border.
public enum FieldValue: Sendable, Hashable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case timestamp(UInt64)
    case array([FieldValue])
    case table(FieldTable)
    case void

    /// The value read as an integer, accepting the shapes different clients send:
    /// pika and the Java client send integers, `amqp-publish -H` sends numeric strings.
    public var integerValue: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9.0e18: return Int64(value)
        case .string(let text): return Int64(text.trimmingCharacters(in: .whitespaces))
        case .bytes(let bytes): return Int64(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces))
        case .timestamp(let value): return value <= UInt64(Int64.max) ? Int64(value) : nil
        default: return nil
        }
    }

    /// The value read as text: strings as they are, byte arrays as UTF-8, numbers in decimal.
    public var stringValue: String? {
        switch self {
        case .string(let text): return text
        case .bytes(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .bool(let value): return String(value)
        case .timestamp(let value): return String(value)
        default: return nil
        }
    }
}

/// An AMQP field table. Keys are unique; the order of entries carries no meaning in AMQP 0-9-1.
public typealias FieldTable = [String: FieldValue]

extension FieldValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
