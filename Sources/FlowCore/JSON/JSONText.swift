import Foundation

/// A JSON value carried with its canonical text, so that a reply's output passes through
/// code that does not know its type unchanged, and is decoded only by the code that does.
///
/// The text is what stores keep and digests hash; the value is what an enclosing message
/// encodes, so nothing is parsed again when the message is written.
public struct JSONText: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The UTF-8 JSON text, in canonical form (sorted keys, no insignificant white space).
    public let text: String
    /// The parsed value.
    public let value: JSONValue

    /// Parses JSON text and keeps it in canonical form, so equal values have equal text
    /// wherever they were written.
    public init(validating text: String) throws {
        self.init(try JSONValue(parsing: text))
    }

    public static let null = JSONText(JSONValue.null)
    public static let emptyObject = JSONText(JSONValue.object([:]))

    public init(_ value: JSONValue) {
        self.value = value
        self.text = value.canonicalText
    }

    /// Text that a `JSONText` produced before (read back from our own store). It is
    /// parsed, but not written again.
    public init(storedText canonicalText: String) throws {
        self.value = try JSONValue(parsing: canonicalText)
        self.text = canonicalText
    }

    /// Encodes a value with ``FlowJSON``: equal values give equal text.
    public init<Value: Encodable>(encoding value: Value) throws {
        let data = try FlowJSON.encode(value)
        self.value = try FlowJSON.decode(JSONValue.self, from: data)
        self.text = String(decoding: data, as: UTF8.self)
    }

    /// Decodes the text as a value of the given type.
    public func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
        try FlowJSON.decode(type, from: text)
    }

    public var description: String { text }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(JSONValue.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    public static func == (left: JSONText, right: JSONText) -> Bool { left.text == right.text }

    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}
