import FlowCore
import Foundation

/// Why a chat template could not be read or rendered. `raise_exception` in a template
/// throws one with the template's own message.
public struct TemplateError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// A value inside a Jinja template, with Python's semantics where templates rely on them:
/// truthiness, `str()`, equality across ints and floats, and dictionaries that keep the
/// order their keys were written in (`tojson` and `items()` show it).
indirect enum TemplateValue: Sendable {
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    case object(OrderedObject)
    case namespace(Namespace)
    case function(String, @Sendable (Arguments) throws -> TemplateValue)

    /// Positional and keyword arguments of a call.
    struct Arguments: Sendable {
        var positional: [TemplateValue]
        var keywords: [(String, TemplateValue)]

        func value(_ index: Int, _ name: String) -> TemplateValue? {
            if let keyword = keywords.first(where: { $0.0 == name }) { return keyword.1 }
            return index < positional.count ? positional[index] : nil
        }
    }

    /// A dictionary in insertion order, its keys compared scalar by scalar (as Python
    /// compares them; Swift's `String` would merge canonically equivalent keys).
    struct OrderedObject: Sendable {
        private(set) var keys: [String] = []
        private var values: [ScalarKey: TemplateValue] = [:]

        init(_ pairs: [(String, TemplateValue)] = []) {
            for (key, value) in pairs { self[key] = value }
        }

        subscript(key: String) -> TemplateValue? {
            get { values[ScalarKey(key)] }
            set {
                let exact = ScalarKey(key)
                if values[exact] == nil, newValue != nil { keys.append(key) }
                if newValue == nil { keys.removeAll { ScalarKey($0) == exact } }
                values[exact] = newValue
            }
        }

        var pairs: [(String, TemplateValue)] { keys.map { ($0, values[ScalarKey($0)]!) } }
    }

    /// `namespace()`: the one mutable object, so that a loop can change what is outside it.
    final class Namespace: @unchecked Sendable {
        var attributes: OrderedObject
        init(_ attributes: OrderedObject) { self.attributes = attributes }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var isTrue: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let value): return value
        case .int(let value): return value != 0
        case .double(let value): return value != 0
        case .string(let value): return !value.isEmpty
        case .array(let value): return !value.isEmpty
        case .object(let value): return !value.keys.isEmpty
        case .namespace, .function: return true
        }
    }

    /// Python's `str()`, as `{{ value }}` prints it.
    var text: String {
        switch self {
        case .undefined: return ""
        case .string(let value): return value
        default: return representation
        }
    }

    /// Python's `repr()`.
    var representation: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let value): return value ? "True" : "False"
        case .int(let value): return String(value)
        case .double(let value): return TemplateValue.pythonFloat(value)
        case .string(let value): return "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        case .array(let values): return "[" + values.map(\.representation).joined(separator: ", ") + "]"
        case .object(let object): return "{" + object.pairs.map { "'\($0.0)': \($0.1.representation)" }.joined(separator: ", ") + "}"
        case .namespace: return "<Namespace>"
        case .function(let name, _): return "<function \(name)>"
        }
    }

    static func pythonFloat(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
        if value == value.rounded(), abs(value) < 1e16 { return String(format: "%.1f", value) }
        return "\(value)"
    }

    /// Python's `==`: ints and floats compare by value, containers element by element.
    static func equal(_ lhs: TemplateValue, _ rhs: TemplateValue) -> Bool {
        switch (lhs, rhs) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.int(a), .double(b)), let (.double(b), .int(a)): return Double(a) == b
        case let (.double(a), .double(b)): return a == b
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.array(a), .array(b)): return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        case let (.object(a), .object(b)):
            return a.keys.count == b.keys.count && a.keys.allSatisfy { key in b[key].map { equal(a[key]!, $0) } ?? false }
        case let (.namespace(a), .namespace(b)): return a === b
        default: return false
        }
    }

    /// The value a JSON document holds, keys in the document's order (``OrderedJSON``).
    static func parseJSON(_ text: String) throws -> TemplateValue {
        do {
            return try OrderedJSON.parse(Array(text.utf8))
        } catch {
            throw TemplateError(error.description)
        }
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// An integer, or a float with no fraction.
    var intValue: Int? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value == value.rounded() && abs(value) < 1e15: return Int(value)
        default: return nil
        }
    }

    var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    var objectValue: OrderedObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    var arrayValue: [TemplateValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// Python's `json.dumps(value, ensure_ascii=False, indent=…, sort_keys=…)`, which
    /// Transformers' `tojson` is.
    func json(indent: Int?, sortKeys: Bool = false, level: Int = 0) throws -> String {
        let itemSeparator = indent == nil ? ", " : ","
        func newline(_ depth: Int) -> String { indent.map { "\n" + String(repeating: " ", count: $0 * depth) } ?? "" }
        switch self {
        case .undefined, .none: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .double(let value): return TemplateValue.pythonFloat(value)
        case .string(let value): return TemplateValue.jsonString(value)
        case .array(let values):
            guard !values.isEmpty else { return "[]" }
            let items = try values.map { newline(level + 1) + (try $0.json(indent: indent, sortKeys: sortKeys, level: level + 1)) }
            return "[" + items.joined(separator: itemSeparator) + newline(level) + "]"
        case .object(let object):
            guard !object.keys.isEmpty else { return "{}" }
            let keys = sortKeys ? object.keys.sorted() : object.keys
            let items = try keys.map { key in
                newline(level + 1) + TemplateValue.jsonString(key) + ": " + (try object[key]!.json(indent: indent, sortKeys: sortKeys, level: level + 1))
            }
            return "{" + items.joined(separator: itemSeparator) + newline(level) + "}"
        case .namespace(let namespace): return try TemplateValue.object(namespace.attributes).json(indent: indent, sortKeys: sortKeys, level: level)
        case .function(let name, _): throw TemplateError("tojson: a function (\(name)) is not JSON")
        }
    }

    static func jsonString(_ value: String) -> String {
        FlowJSON.stringLiteral(value)
    }
}
