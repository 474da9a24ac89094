import FlowCore

/// The JSON a `response_format` asks for, as the constrained decoder follows it: a subset
/// of JSON Schema that covers what structured-output schemas use (OpenAI's strict mode
/// among them): objects with properties (in their order, the required ones always), arrays,
/// strings (with `enum`, `maxLength`), numbers, integers, booleans, null, and any JSON
/// (`json_object`). A schema that needs more is refused, saying which keyword.
public indirect enum JSONShape: Sendable, Equatable {
    public struct Property: Sendable, Equatable {
        public var name: String
        public var shape: JSONShape
        public var required: Bool
    }

    /// An object with `properties`, written in their order; `open`: any keys, any values.
    case object(properties: [Property], open: Bool)
    case array(items: JSONShape, minimum: Int, maximum: Int)
    case string(maximumLength: Int)
    /// One of these strings.
    case oneOf([String])
    case number(integer: Bool)
    case boolean
    case null
    /// Any JSON value (inside a `json_object` answer).
    case any(depth: Int)

    /// The longest string and the most items the decoder lets a value have when the schema
    /// says nothing: generation must end within `max_tokens`, and a closing is forced when
    /// the budget runs short anyway.
    static let defaultMaximumLength = 2_000
    static let defaultMaximumItems = 64

    /// What `response_format` asks for: nil for text.
    public static func parse(responseFormat: JSONValue) throws(ServingError) -> JSONShape? {
        switch responseFormat["type"]?.stringValue {
        case "text"?, nil:
            return nil
        case "json_object"?:
            return .object(properties: [], open: true)
        case "json_schema"?:
            guard let schema = responseFormat["json_schema"]?["schema"] else {
                throw ServingError.invalid("response_format json_schema needs json_schema.schema", param: "response_format")
            }
            let shape = try parse(schema: schema, at: "schema")
            guard case .object = shape else { throw ServingError.invalid("the schema's root must be an object", param: "response_format") }
            return shape
        case let other?:
            throw ServingError.invalid("response_format type '\(other)' is not one of text, json_object, json_schema", param: "response_format")
        }
    }

    static func parse(schema: JSONValue, at path: String) throws(ServingError) -> JSONShape {
        guard let fields = schema.objectValue else { throw unsupported("\(path) is not a JSON object") }
        let known: Set = ["type", "properties", "required", "additionalProperties", "items", "enum", "maxLength", "minItems", "maxItems", "description", "title", "default"]
        if let keyword = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw unsupported("\(path) uses \(keyword), which this server's constrained decoding does not support")
        }
        if let values = fields["enum"]?.arrayValue {
            let strings = values.compactMap(\.stringValue)
            guard strings.count == values.count, !strings.isEmpty else { throw unsupported("\(path).enum must list strings") }
            try checkText(strings, at: "\(path).enum")
            return .oneOf(strings)
        }
        switch fields["type"]?.stringValue {
        case "object"?:
            let properties = fields["properties"]?.objectValue ?? [:]
            let required = Set((fields["required"]?.arrayValue ?? []).compactMap(\.stringValue))
            // Their order in the schema: JSONValue keeps an object's keys sorted, so the
            // schema's text order is read from `required` first, then the rest by name.
            let order = (fields["required"]?.arrayValue ?? []).compactMap(\.stringValue).filter { properties[$0] != nil }
                + properties.keys.sorted().filter { !required.contains($0) }
            try checkText(order, at: "\(path).properties")
            var listed: [Property] = []
            for name in order {
                listed.append(Property(name: name, shape: try parse(schema: properties[name]!, at: "\(path).properties.\(name)"), required: required.contains(name)))
            }
            let open = listed.isEmpty && fields["additionalProperties"]?.boolValue != false
            return .object(properties: listed, open: open)
        case "array"?:
            let items = try fields["items"].map { value throws(ServingError) in try parse(schema: value, at: "\(path).items") } ?? .any(depth: 1)
            let minimum = fields["minItems"]?.intValue ?? 0
            return .array(items: items, minimum: minimum, maximum: max(minimum, fields["maxItems"]?.intValue ?? defaultMaximumItems))
        case "string"?: return .string(maximumLength: min(fields["maxLength"]?.intValue ?? defaultMaximumLength, defaultMaximumLength))
        case "number"?: return .number(integer: false)
        case "integer"?: return .number(integer: true)
        case "boolean"?: return .boolean
        case "null"?: return .null
        case nil: return .any(depth: 2)
        case let other?: throw unsupported("\(path).type '\(other)' is not supported")
        }
    }

    /// Names and enum values are matched byte for byte: ones that JSON would escape are refused.
    private static func checkText(_ texts: [String], at path: String) throws(ServingError) {
        if let bad = texts.first(where: { $0.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") } }) {
            throw unsupported("\(path) has '\(bad)', which needs escaping in JSON")
        }
    }

    private static func unsupported(_ what: String) -> ServingError {
        ServingError.invalid("response_format: \(what)", param: "response_format")
    }
}
