import Foundation

extension TemplateBuiltins {
    /// `value | name(arguments)`; the value is the first positional argument.
    static func filter(_ name: String, _ arguments: TemplateValue.Arguments) throws -> TemplateValue {
        let value = arguments.positional[0]
        let rest = TemplateValue.Arguments(positional: Array(arguments.positional.dropFirst()), keywords: arguments.keywords)
        switch name {
        case "trim":
            return .string(value.text.trimmingCharacters(in: .whitespacesAndNewlines))
        case "tojson":
            let indent = try rest.value(0, "indent").flatMap { $0.isUndefined || ($0.text == "None") ? nil : try integer($0, "tojson's indent") }
            return .string(try value.json(indent: indent, sortKeys: rest.value(1, "sort_keys")?.isTrue ?? false))
        case "length", "count":
            return .int(try length(value))
        case "list":
            return .array(try TemplateRenderer.items(of: value))
        case "first":
            return try TemplateRenderer.items(of: value).first ?? .undefined("first of an empty sequence")
        case "last":
            return try TemplateRenderer.items(of: value).last ?? .undefined("last of an empty sequence")
        case "reverse":
            if case .string(let text) = value { return .string(String(scalars: text.unicodeScalars.reversed())) }
            return .array(try TemplateRenderer.items(of: value).reversed())
        case "upper": return .string(value.text.uppercased())
        case "lower": return .string(value.text.lowercased())
        case "title": return .string(value.text.capitalized)
        case "capitalize": return .string(value.text.prefix(1).uppercased() + value.text.dropFirst().lowercased())
        case "string": return .string(value.text)
        case "safe", "e", "escape": return value
        case "int":
            switch value {
            case .int: return value
            case .double(let number): return .int(Int(number))
            case .string(let text): return .int(Int(text.trimmingCharacters(in: .whitespaces)) ?? 0)
            case .bool(let flag): return .int(flag ? 1 : 0)
            default: return .int(0)
            }
        case "float":
            switch value {
            case .int(let number): return .double(Double(number))
            case .double: return value
            case .string(let text): return .double(Double(text.trimmingCharacters(in: .whitespaces)) ?? 0)
            default: return .double(0)
            }
        case "abs":
            if case .int(let number) = value { return .int(abs(number)) }
            if case .double(let number) = value { return .double(abs(number)) }
            throw TemplateError("abs needs a number, not \(value.representation)")
        case "default", "d":
            let fallback = rest.value(0, "default_value") ?? .string("")
            let boolean = rest.value(1, "boolean")?.isTrue ?? false
            return value.isUndefined || (boolean && !value.isTrue) ? fallback : value
        case "join":
            let separator = rest.value(0, "d")?.text ?? ""
            var items = try TemplateRenderer.items(of: value)
            if let attribute = rest.value(1, "attribute")?.text { items = try items.map { try member(of: $0, named: attribute) } }
            return .string(items.map(\.text).joined(separator: separator))
        case "replace":
            return .string(value.text.replacingOccurrences(of: rest.value(0, "old")?.text ?? "", with: rest.value(1, "new")?.text ?? "", options: .literal))
        case "items":
            guard case .object(let object) = value else { throw TemplateError("items needs a dictionary, not \(value.representation)") }
            return .array(object.pairs.map { .array([.string($0.0), $0.1]) })
        case "map":
            let items = try TemplateRenderer.items(of: value)
            if let attribute = rest.value(99, "attribute")?.text {
                let fallback = rest.value(99, "default")
                return .array(try items.map { item in
                    let result = try member(of: item, named: attribute)
                    return result.isUndefined ? fallback ?? result : result
                })
            }
            guard let filterName = rest.positional.first?.text else { throw TemplateError("map needs a filter name or attribute=") }
            let extra = Array(rest.positional.dropFirst())
            return .array(try items.map { try filter(filterName, TemplateValue.Arguments(positional: [$0] + extra, keywords: [])) })
        case "selectattr", "rejectattr":
            guard let attribute = rest.positional.first?.text else { throw TemplateError("\(name) needs an attribute name") }
            let testName = rest.positional.count > 1 ? rest.positional[1].text : nil
            let testArguments = Array(rest.positional.dropFirst(2))
            let keep = name == "selectattr"
            return .array(try TemplateRenderer.items(of: value).filter { item in
                let field = try member(of: item, named: attribute)
                let passes = try testName.map { try test($0, field, testArguments) } ?? field.isTrue
                return passes == keep
            })
        case "select", "reject":
            let testName = rest.positional.first?.text
            let testArguments = Array(rest.positional.dropFirst())
            let keep = name == "select"
            return .array(try TemplateRenderer.items(of: value).filter { item in
                (try testName.map { try test($0, item, testArguments) } ?? item.isTrue) == keep
            })
        case "unique":
            var seen: [TemplateValue] = []
            for item in try TemplateRenderer.items(of: value) where !seen.contains(where: { TemplateValue.equal($0, item) }) { seen.append(item) }
            return .array(seen)
        case "indent":
            let width = try rest.value(0, "width").map { try integer($0, "indent") } ?? 4
            let padding = String(repeating: " ", count: width)
            let first = rest.value(1, "first")?.isTrue ?? false
            let lines = value.text.components(separatedBy: "\n")
            return .string(lines.enumerated().map { index, line in
                (index == 0 && !first) || line.isEmpty ? line : padding + line
            }.joined(separator: "\n"))
        case "sum":
            return try TemplateRenderer.items(of: value).reduce(TemplateValue.int(0)) { try binary("+", $0, $1) }
        default:
            throw TemplateError("the filter '\(name)' is not supported")
        }
    }

    /// `value is name(arguments)`.
    static func test(_ name: String, _ value: TemplateValue, _ arguments: [TemplateValue]) throws -> Bool {
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "string": return value.stringValue != nil
        case "number": return value.doubleValue != nil
        case "integer":
            if case .int = value { return true }
            return false
        case "float":
            if case .double = value { return true }
            return false
        case "boolean": return value.boolValue != nil
        case "true": return value.boolValue == true
        case "false": return value.boolValue == false
        case "mapping":
            if case .namespace = value { return true }
            return value.objectValue != nil
        case "iterable", "sequence": return value.arrayValue != nil || value.objectValue != nil || value.stringValue != nil
        case "callable":
            if case .function = value { return true }
            return false
        case "equalto", "eq", "==", "sameas":
            return TemplateValue.equal(value, arguments.first ?? .none)
        case "ne", "!=":
            return !TemplateValue.equal(value, arguments.first ?? .none)
        case "in":
            return try binary("in", value, arguments.first ?? .array([])).isTrue
        case "odd": return try integer(value, "odd") % 2 != 0
        case "even": return try integer(value, "even") % 2 == 0
        case "divisibleby": return try integer(value, "divisibleby") % (try integer(arguments.first ?? .int(1), "divisibleby")) == 0
        case "lower": return value.text == value.text.lowercased()
        case "upper": return value.text == value.text.uppercased()
        default: throw TemplateError("the test '\(name)' is not supported")
        }
    }
}
