import Foundation

/// The globals, filters, tests, operators and methods that chat templates call, with the
/// behaviour of Jinja's and Python's own (Transformers renders with Jinja in Python).
enum TemplateBuiltins {
    static let globals: [String: TemplateValue] = [
        "raise_exception": .function("raise_exception") { arguments in
            throw TemplateError(arguments.value(0, "message")?.text ?? "the template raised an exception")
        },
        "namespace": .function("namespace") { arguments in
            var attributes = TemplateValue.OrderedObject()
            if case .object(let initial)? = arguments.positional.first { attributes = initial }
            for (key, value) in arguments.keywords { attributes[key] = value }
            return .namespace(TemplateValue.Namespace(attributes))
        },
        "range": .function("range") { arguments in
            let numbers = try arguments.positional.map { try integer($0, "range") }
            let (start, stop, step) = numbers.count == 1 ? (0, numbers[0], 1) : (numbers[0], numbers[1], numbers.count > 2 ? numbers[2] : 1)
            guard step != 0 else { throw TemplateError("range() step must not be zero") }
            return .array(Swift.stride(from: start, to: stop, by: step).map { .int($0) })
        },
        // Transformers offers it for templates that print today's date (Llama 3.1).
        "strftime_now": .function("strftime_now") { arguments in
            let format = arguments.value(0, "format")?.text ?? "%Y-%m-%d"
            var now = time(nil)
            var parts = tm()
            localtime_r(&now, &parts)
            var buffer = [CChar](repeating: 0, count: 256)
            let length = strftime(&buffer, buffer.count, format, &parts)
            return .string(String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        },
    ]

    static func integer(_ value: TemplateValue, _ context: String) throws -> Int {
        switch value {
        case .int(let number): return number
        case .bool(let flag): return flag ? 1 : 0
        default: throw TemplateError("\(context) needs an integer, not \(value.representation)")
        }
    }

    // MARK: Members, items and slices

    /// `value.name` and `value["name"]`: a dictionary's entry, a namespace's attribute,
    /// or a method of a string, list or dictionary.
    static func member(of value: TemplateValue, named name: String) throws -> TemplateValue {
        switch value {
        case .undefined(let what):
            throw TemplateError("'\(what)' is undefined, so it has no attribute '\(name)'")
        case .object(let object):
            if let entry = object[name] { return entry }
            return dictionaryMethod(object, name) ?? .undefined(name)
        case .namespace(let namespace):
            return namespace.attributes[name] ?? .undefined(name)
        case .string(let text):
            return stringMethod(text, name) ?? .undefined(name)
        case .array(let values):
            return listMethod(values, name) ?? .undefined(name)
        default:
            return .undefined(name)
        }
    }

    static func item(of value: TemplateValue, at key: TemplateValue) throws -> TemplateValue {
        switch (value, key) {
        case (.undefined(let what), _):
            throw TemplateError("'\(what)' is undefined, so it has no item \(key.representation)")
        case let (.array(values), .int(index)):
            let position = index < 0 ? values.count + index : index
            return values.indices.contains(position) ? values[position] : .undefined("item \(index)")
        case let (.string(text), .int(index)):
            // Python indexes a string by code point.
            let scalars = Array(text.unicodeScalars)
            let position = index < 0 ? scalars.count + index : index
            return scalars.indices.contains(position) ? .string(String(scalars[position])) : .undefined("item \(index)")
        case let (.object(object), key):
            return object[key.text] ?? .undefined(key.text)
        default:
            return .undefined(key.representation)
        }
    }

    static func slice(_ value: TemplateValue, start: TemplateValue?, stop: TemplateValue?, step: TemplateValue?) throws -> TemplateValue {
        func indices(_ count: Int) throws -> [Int] {
            let step = try step.map { try integer($0, "a slice step") } ?? 1
            guard step != 0 else { throw TemplateError("a slice step must not be zero") }
            func clamp(_ bound: TemplateValue?, _ fallback: Int) throws -> Int {
                guard let bound, !(bound.isUndefined), case let number = try integer(bound, "a slice bound") else { return fallback }
                let position = number < 0 ? number + count : number
                return step > 0 ? min(max(position, 0), count) : min(max(position, -1), count - 1)
            }
            let from = try clamp(start, step > 0 ? 0 : count - 1)
            let to = try clamp(stop, step > 0 ? count : -1)
            return Array(Swift.stride(from: from, to: to, by: step))
        }
        switch value {
        case .array(let values): return .array(try indices(values.count).map { values[$0] })
        case .string(let text):
            let scalars = Array(text.unicodeScalars)
            return .string(String(scalars: try indices(scalars.count).map { scalars[$0] }))
        default: throw TemplateError("\(value.representation) cannot be sliced")
        }
    }

    private static func stringMethod(_ text: String, _ name: String) -> TemplateValue? {
        func method(_ body: @escaping @Sendable (TemplateValue.Arguments) throws -> TemplateValue) -> TemplateValue { .function(name, body) }
        switch name {
        case "strip": return method { .string(text.trimmingCharacters(in: characterSet($0))) }
        case "lstrip": return method { arguments in
            let set = characterSet(arguments)
            return .string(String(String.UnicodeScalarView(text.unicodeScalars.drop { set.contains($0) })))
        }
        case "rstrip": return method { arguments in
            let set = characterSet(arguments)
            var scalars = Array(text.unicodeScalars)
            while let last = scalars.last, set.contains(last) { scalars.removeLast() }
            return .string(String(scalars: scalars))
        }
        case "upper": return method { _ in .string(text.uppercased()) }
        case "lower": return method { _ in .string(text.lowercased()) }
        case "title": return method { _ in .string(text.capitalized) }
        case "capitalize": return method { _ in .string(text.prefix(1).uppercased() + text.dropFirst().lowercased()) }
        case "startswith": return method { .bool(text.unicodeScalars.starts(with: ($0.value(0, "prefix")?.text ?? "").unicodeScalars)) }
        case "endswith": return method { .bool(text.unicodeScalars.reversed().starts(with: ($0.value(0, "suffix")?.text ?? "").unicodeScalars.reversed())) }
        case "replace": return method { .string(text.replacingOccurrences(of: $0.value(0, "old")?.text ?? "", with: $0.value(1, "new")?.text ?? "", options: .literal)) }
        case "split": return method { arguments in
            let limit = try arguments.value(1, "maxsplit").map { try integer($0, "split") } ?? -1
            if let separator = arguments.value(0, "sep"), !(separator.isUndefined), case .string(let sep) = separator {
                var parts: [String] = []
                var rest = Substring(text)
                while limit < 0 || parts.count < limit, let range = rest.range(of: sep, options: .literal) {
                    parts.append(String(rest[..<range.lowerBound]))
                    rest = rest[range.upperBound...]
                }
                parts.append(String(rest))
                return .array(parts.map { .string($0) })
            }
            return .array(text.split(whereSeparator: \.isWhitespace).map { .string(String($0)) })
        }
        case "find": return method { arguments in
            guard let range = text.range(of: arguments.value(0, "sub")?.text ?? "", options: .literal) else { return .int(-1) }
            return .int(text.distance(from: text.startIndex, to: range.lowerBound))
        }
        case "format": return method { arguments in
            var result = text
            for value in arguments.positional { if let range = result.range(of: "{}") { result.replaceSubrange(range, with: value.text) } }
            return .string(result)
        }
        default: return nil
        }
    }

    /// Python's `strip(chars)`: the characters given, or whitespace.
    private static func characterSet(_ arguments: TemplateValue.Arguments) -> CharacterSet {
        guard let chars = arguments.value(0, "chars"), case .string(let set) = chars else { return .whitespacesAndNewlines }
        return CharacterSet(charactersIn: set)
    }

    private static func dictionaryMethod(_ object: TemplateValue.OrderedObject, _ name: String) -> TemplateValue? {
        switch name {
        case "items": return .function(name) { _ in .array(object.pairs.map { .array([.string($0.0), $0.1]) }) }
        case "keys": return .function(name) { _ in .array(object.keys.map { .string($0) }) }
        case "values": return .function(name) { _ in .array(object.pairs.map(\.1)) }
        case "get": return .function(name) { arguments in
            object[arguments.value(0, "key")?.text ?? ""] ?? arguments.value(1, "default") ?? .none
        }
        default: return nil
        }
    }

    private static func listMethod(_ values: [TemplateValue], _ name: String) -> TemplateValue? {
        switch name {
        case "index": return .function(name) { arguments in
            let wanted = arguments.value(0, "value") ?? .none
            guard let index = values.firstIndex(where: { TemplateValue.equal($0, wanted) }) else { throw TemplateError("\(wanted.representation) is not in the list") }
            return .int(index)
        }
        case "count": return .function(name) { arguments in
            let wanted = arguments.value(0, "value") ?? .none
            return .int(values.filter { TemplateValue.equal($0, wanted) }.count)
        }
        default: return nil
        }
    }

    // MARK: Operators

    static func binary(_ symbol: String, _ left: TemplateValue, _ right: TemplateValue) throws -> TemplateValue {
        switch symbol {
        case "==": return .bool(TemplateValue.equal(left, right))
        case "!=": return .bool(!TemplateValue.equal(left, right))
        case "~": return .string(left.text + right.text)
        case "in":
            switch right {
            case .string(let text): return .bool(text.contains(left.text) || left.text.isEmpty)
            case .array(let values): return .bool(values.contains { TemplateValue.equal($0, left) })
            case .object(let object): return .bool(object[left.text] != nil)
            case .undefined: return .bool(false)  // Jinja iterates an undefined value as empty
            default: throw TemplateError("'in' needs a string, list or dictionary on its right, not \(right.representation)")
            }
        case "<", ">", "<=", ">=":
            let order: Bool
            switch (left, right) {
            case let (.string(a), .string(b)): order = compare(a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1 : (TemplateValue.equal(left, right) ? 0 : 1), symbol)
            default:
                guard let a = number(left), let b = number(right) else { throw TemplateError("cannot compare \(left.representation) \(symbol) \(right.representation)") }
                order = compare(a < b ? -1 : (a == b ? 0 : 1), symbol)
            }
            return .bool(order)
        case "+":
            switch (left, right) {
            case let (.string(a), .string(b)): return .string(a + b)
            case let (.array(a), .array(b)): return .array(a + b)
            case let (.int(a), .int(b)): return .int(a + b)
            default:
                if let a = number(left), let b = number(right) { return .double(a + b) }
                throw TemplateError("cannot add \(describe(left)) and \(describe(right))")
            }
        case "-", "*", "/", "//", "%":
            if symbol == "*", case .string(let text) = left, case .int(let count) = right { return .string(String(repeating: text, count: max(0, count))) }
            if case .int(let a) = left, case .int(let b) = right, symbol != "/" {
                if (symbol == "//" || symbol == "%"), b == 0 { throw TemplateError("division by zero") }
                switch symbol {
                case "-": return .int(a - b)
                case "*": return .int(a * b)
                case "//": return .int(Int((Double(a) / Double(b)).rounded(.down)))
                default: return .int(((a % b) + b) % b)
                }
            }
            guard let a = number(left), let b = number(right) else { throw TemplateError("cannot compute \(describe(left)) \(symbol) \(describe(right))") }
            switch symbol {
            case "-": return .double(a - b)
            case "*": return .double(a * b)
            case "/": guard b != 0 else { throw TemplateError("division by zero") }; return .double(a / b)
            case "//": return .double((a / b).rounded(.down))
            default: return .double(a - b * (a / b).rounded(.down))
            }
        default:
            throw TemplateError("operator \(symbol) is not supported")
        }
    }

    private static func describe(_ value: TemplateValue) -> String {
        if case .undefined(let what) = value { return "undefined '\(what)'" }
        return value.representation
    }

    private static func compare(_ order: Int, _ symbol: String) -> Bool {
        switch symbol {
        case "<": return order < 0
        case ">": return order > 0
        case "<=": return order <= 0
        default: return order >= 0
        }
    }

    private static func number(_ value: TemplateValue) -> Double? {
        switch value {
        case .int(let number): return Double(number)
        case .double(let number): return number
        case .bool(let flag): return flag ? 1 : 0
        default: return nil
        }
    }

    static func length(_ value: TemplateValue) throws -> Int {
        switch value {
        case .string(let text): return text.unicodeScalars.count
        case .array(let values): return values.count
        case .object(let object): return object.keys.count
        case .undefined: return 0
        default: throw TemplateError("\(value.representation) has no length")
        }
    }
}
