import Foundation

/// A JSON value carried as its text, so that a reply's output passes through code that
/// does not know its type, byte for byte, and is decoded only by the code that does.
public struct JSONText: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The UTF-8 JSON text.
    public let text: String

    /// Parses JSON text and keeps it in canonical form (sorted keys, no insignificant
    /// white space), so equal values have equal text wherever they were written.
    public init(validating text: String) throws {
        self.text = try JSONDecoder().decode(AnyJSON.self, from: Data(text.utf8)).canonicalText()
    }

    /// Encodes a value as JSON text with sorted keys, so equal values give equal text.
    /// Text that a `JSONText` produced before (read back from our own store), taken as it
    /// is: checking it again would parse every stored value on every read.
    public init(unchecked canonicalText: String) {
        self.text = canonicalText
    }

    public init<Value: Encodable>(encoding value: Value) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.text = String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Decodes the text as a value of the given type.
    public func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    public var description: String { text }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let value = try container.decode(AnyJSON.self)
        self.text = try value.canonicalText()
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        let value = try JSONDecoder().decode(AnyJSON.self, from: Data(text.utf8))
        try container.encode(value)
    }
}

/// Any JSON value, used to carry ``JSONText`` through `Codable`.
enum AnyJSON: Codable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case integer(Int64)
    case string(String)
    case array([AnyJSON])
    case object([String: AnyJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([AnyJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: AnyJSON].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    func canonicalText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
