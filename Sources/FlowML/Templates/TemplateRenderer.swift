import Foundation

/// Renders parsed nodes with Jinja's scoping: a `for` body has its own scope, so a `set`
/// inside a loop does not change the variable outside it (templates use `namespace()` for
/// that), while `if` blocks share their enclosing scope.
struct TemplateRenderer {
    private var scopes: [[String: TemplateValue]]

    init(variables: [String: TemplateValue]) {
        scopes = [TemplateBuiltins.globals.merging(variables) { _, new in new }]
    }

    private enum Flow { case normal, breakLoop, continueLoop }

    mutating func render(_ nodes: [TemplateNode]) throws -> String {
        var output = ""
        _ = try render(nodes, into: &output)
        return output
    }

    private mutating func render(_ nodes: [TemplateNode], into output: inout String) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let text):
                output += text
            case .output(let expression):
                output += try evaluate(expression).text
            case .conditional(let branches, let elseBody):
                var taken = false
                for (condition, body) in branches where try evaluate(condition).isTrue {
                    taken = true
                    let flow = try render(body, into: &output)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try render(elseBody, into: &output)
                    if flow != .normal { return flow }
                }
            case .forLoop(let targets, let iterable, let condition, let body, let elseBody):
                try renderLoop(targets: targets, items: try Self.items(of: try evaluate(iterable)), condition: condition, body: body, elseBody: elseBody, into: &output)
            case .assign(let targets, let attribute, let value):
                let result = try evaluate(value)
                if let attribute {
                    guard case .namespace(let namespace) = lookup(targets[0]) else {
                        throw TemplateError("cannot set \(targets[0]).\(attribute): \(targets[0]) is not a namespace")
                    }
                    namespace.attributes[attribute] = result
                } else if targets.count == 1 {
                    scopes[scopes.count - 1][targets[0]] = result
                } else {
                    let values = try Self.items(of: result)
                    guard values.count == targets.count else { throw TemplateError("cannot unpack \(values.count) values into \(targets.count) names") }
                    for (name, value) in zip(targets, values) { scopes[scopes.count - 1][name] = value }
                }
            case .assignBlock(let name, let body):
                var captured = ""
                _ = try render(body, into: &captured)
                scopes[scopes.count - 1][name] = .string(captured)
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            case .generation(let body):
                let flow = try render(body, into: &output)
                if flow != .normal { return flow }
            }
        }
        return .normal
    }

    private mutating func renderLoop(targets: [String], items: [TemplateValue], condition: TemplateExpression?, body: [TemplateNode], elseBody: [TemplateNode], into output: inout String) throws {
        scopes.append([:])
        defer { scopes.removeLast() }
        func bind(_ item: TemplateValue) throws {
            if targets.count == 1 {
                scopes[scopes.count - 1][targets[0]] = item
            } else {
                let values = try Self.items(of: item)
                guard values.count == targets.count else { throw TemplateError("cannot unpack \(values.count) values into \(targets.count) loop variables") }
                for (name, value) in zip(targets, values) { scopes[scopes.count - 1][name] = value }
            }
        }
        // A loop's `if` filters before `loop.index` and `loop.length` count.
        var kept: [TemplateValue] = []
        for item in items {
            if let condition {
                try bind(item)
                guard try evaluate(condition).isTrue else { continue }
            }
            kept.append(item)
        }
        if kept.isEmpty {
            _ = try render(elseBody, into: &output)
            return
        }
        for (index, item) in kept.enumerated() {
            try bind(item)
            scopes[scopes.count - 1]["loop"] = .object(TemplateValue.OrderedObject([
                ("index", .int(index + 1)), ("index0", .int(index)),
                ("revindex", .int(kept.count - index)), ("revindex0", .int(kept.count - index - 1)),
                ("first", .bool(index == 0)), ("last", .bool(index == kept.count - 1)), ("length", .int(kept.count)),
                ("previtem", index > 0 ? kept[index - 1] : .undefined("loop.previtem")),
                ("nextitem", index + 1 < kept.count ? kept[index + 1] : .undefined("loop.nextitem")),
            ]))
            if try render(body, into: &output) == .breakLoop { break }
        }
    }

    private func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        return .undefined(name)
    }

    /// What a `for` iterates: a list's items, a dictionary's keys, a string's code points
    /// (as Python does).
    static func items(of value: TemplateValue) throws -> [TemplateValue] {
        switch value {
        case .array(let values): return values
        case .object(let object): return object.keys.map { .string($0) }
        case .string(let text): return text.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw TemplateError("\(value.representation) is not iterable")
        }
    }

    mutating func evaluate(_ expression: TemplateExpression) throws -> TemplateValue {
        switch expression {
        case .literal(let value):
            return value
        case .name(let name):
            return lookup(name)
        case .attribute(let base, let name):
            return try TemplateBuiltins.member(of: try evaluate(base), named: name)
        case .item(let base, let key):
            let container = try evaluate(base)
            let key = try evaluate(key)
            if case .string(let name) = key { return try TemplateBuiltins.member(of: container, named: name) }
            return try TemplateBuiltins.item(of: container, at: key)
        case .slice(let base, let start, let stop, let step):
            return try TemplateBuiltins.slice(try evaluate(base), start: try start.map { try evaluate($0) }, stop: try stop.map { try evaluate($0) }, step: try step.map { try evaluate($0) })
        case .call(let callee, let positional, let keywords):
            let function = try evaluate(callee)
            guard case .function(_, let body) = function else {
                throw TemplateError("\(Self.describe(callee)) is not callable")
            }
            return try body(try arguments(positional, keywords))
        case .filter(let base, let name, let positional, let keywords):
            let value = try evaluate(base)
            var arguments = try arguments(positional, keywords)
            arguments.positional.insert(value, at: 0)
            return try TemplateBuiltins.filter(name, arguments)
        case .test(let base, let name, let argumentExpressions, let negated):
            let value = try evaluate(base)
            let result = try TemplateBuiltins.test(name, value, try argumentExpressions.map { try evaluate($0) })
            return .bool(result != negated)
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTrue))
        case .negate(let operand):
            switch try evaluate(operand) {
            case .int(let value): return .int(-value)
            case .double(let value): return .double(-value)
            case let other: throw TemplateError("cannot negate \(other.representation)")
            }
        case .and(let left, let right):
            let value = try evaluate(left)
            return value.isTrue ? try evaluate(right) : value
        case .or(let left, let right):
            let value = try evaluate(left)
            return value.isTrue ? value : try evaluate(right)
        case .ternary(let value, let condition, let otherwise):
            if try evaluate(condition).isTrue { return try evaluate(value) }
            return try otherwise.map { try evaluate($0) } ?? .undefined("the else of a conditional expression")
        case .binary(let symbol, let left, let right):
            return try TemplateBuiltins.binary(symbol, try evaluate(left), try evaluate(right))
        case .list(let items):
            return .array(try items.map { try evaluate($0) })
        case .dictionary(let pairs):
            var object = TemplateValue.OrderedObject()
            for (key, value) in pairs { object[try evaluate(key).text] = try evaluate(value) }
            return .object(object)
        }
    }

    private mutating func arguments(_ positional: [TemplateExpression], _ keywords: [(String, TemplateExpression)]) throws -> TemplateValue.Arguments {
        TemplateValue.Arguments(positional: try positional.map { try evaluate($0) }, keywords: try keywords.map { ($0.0, try evaluate($0.1)) })
    }

    private static func describe(_ expression: TemplateExpression) -> String {
        switch expression {
        case .name(let name): return name
        case .attribute(let base, let name): return describe(base) + "." + name
        default: return "the expression"
        }
    }
}
