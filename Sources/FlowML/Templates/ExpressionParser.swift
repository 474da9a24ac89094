/// Expressions over one tag's tokens.
struct ExpressionParser {
    private let tokens: [TemplateLexer.Token]
    private var position = 0

    init(tokens: [TemplateLexer.Token]) { self.tokens = tokens }

    var atEnd: Bool { position >= tokens.count }

    mutating func next() -> TemplateLexer.Token? {
        guard position < tokens.count else { return nil }
        position += 1
        return tokens[position - 1]
    }

    private func peek(_ offset: Int = 0) -> TemplateLexer.Token? {
        position + offset < tokens.count ? tokens[position + offset] : nil
    }

    mutating func consume(_ token: TemplateLexer.Token) -> Bool {
        guard peek() == token else { return false }
        position += 1
        return true
    }

    private mutating func expect(_ token: TemplateLexer.Token) throws {
        guard consume(token) else { throw TemplateError("expected \(token) in an expression, found \(peek().map { "\($0)" } ?? "the end")") }
    }

    mutating func parseWhole() throws -> TemplateExpression {
        let expression = try parseTernary(allowCondition: true)
        guard atEnd else { throw TemplateError("unexpected \(peek()!) after an expression") }
        return expression
    }

    mutating func parseTernary(allowCondition: Bool) throws -> TemplateExpression {
        let value = try parseOr()
        guard allowCondition, consume(.name("if")) else { return value }
        let condition = try parseOr()
        let otherwise = consume(.name("else")) ? try parseTernary(allowCondition: true) : nil
        return .ternary(value, condition: condition, otherwise: otherwise)
    }

    mutating func parseOr() throws -> TemplateExpression {
        var left = try parseAnd()
        while consume(.name("or")) { left = .or(left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws -> TemplateExpression {
        var left = try parseNot()
        while consume(.name("and")) { left = .and(left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws -> TemplateExpression {
        if consume(.name("not")) { return .not(try parseNot()) }
        return try parseComparison()
    }

    private mutating func parseComparison() throws -> TemplateExpression {
        var left = try parseConcatenation()
        while true {
            if case .symbol(let symbol) = peek(), ["==", "!=", "<", ">", "<=", ">="].contains(symbol) {
                position += 1
                left = .binary(symbol, left, try parseConcatenation())
            } else if consume(.name("in")) {
                left = .binary("in", left, try parseConcatenation())
            } else if peek() == .name("not"), peek(1) == .name("in") {
                position += 2
                left = .not(.binary("in", left, try parseConcatenation()))
            } else {
                return left
            }
        }
    }

    private mutating func parseConcatenation() throws -> TemplateExpression {
        var left = try parseSum()
        while consume(.symbol("~")) { left = .binary("~", left, try parseSum()) }
        return left
    }

    private mutating func parseSum() throws -> TemplateExpression {
        var left = try parseProduct()
        while case .symbol(let symbol) = peek(), symbol == "+" || symbol == "-" {
            position += 1
            left = .binary(symbol, left, try parseProduct())
        }
        return left
    }

    private mutating func parseProduct() throws -> TemplateExpression {
        var left = try parseUnary()
        while case .symbol(let symbol) = peek(), ["*", "/", "//", "%"].contains(symbol) {
            position += 1
            left = .binary(symbol, left, try parseUnary())
        }
        return left
    }

    private mutating func parseUnary() throws -> TemplateExpression {
        if consume(.symbol("-")) { return .negate(try parseUnary()) }
        if consume(.symbol("+")) { return try parseUnary() }
        return try parseFilters(try parsePostfix(try parsePrimary()))
    }

    /// `value | filter(args)` and `value is [not] test(args)`, left to right.
    private mutating func parseFilters(_ base: TemplateExpression) throws -> TemplateExpression {
        var value = base
        while true {
            if consume(.symbol("|")) {
                guard case .name(let name) = next() else { throw TemplateError("a filter name must follow '|'") }
                var (positional, keywords): ([TemplateExpression], [(String, TemplateExpression)]) = ([], [])
                if peek() == .symbol("(") { (positional, keywords) = try parseArguments() }
                value = .filter(value, name, positional, keywords)
            } else if consume(.name("is")) {
                let negated = consume(.name("not"))
                guard case .name(let name) = next() else { throw TemplateError("a test name must follow 'is'") }
                var arguments: [TemplateExpression] = []
                if peek() == .symbol("(") {
                    arguments = try parseArguments().0
                } else if let token = peek(), Self.startsTestArgument(token) {
                    arguments = [try parsePostfix(try parsePrimary())]
                }
                value = .test(value, name, arguments, negated: negated)
            } else {
                return value
            }
        }
    }

    /// `x is equalto 3`, `x is sameas none`: a test may take one bare argument.
    private static func startsTestArgument(_ token: TemplateLexer.Token) -> Bool {
        switch token {
        case .string, .int, .double: return true
        case .name(let name): return !["and", "or", "else", "if", "in", "not", "is"].contains(name)
        default: return false
        }
    }

    private mutating func parsePostfix(_ base: TemplateExpression) throws -> TemplateExpression {
        var value = base
        while true {
            if consume(.symbol(".")) {
                switch next() {
                case .name(let name): value = .attribute(value, name)
                case .int(let index): value = .item(value, .literal(.int(index)))
                default: throw TemplateError("an attribute name must follow '.'")
                }
            } else if consume(.symbol("[")) {
                var parts: [TemplateExpression?] = [nil]
                var sawColon = false
                while !consume(.symbol("]")) {
                    if consume(.symbol(":")) {
                        sawColon = true
                        parts.append(nil)
                    } else {
                        parts[parts.count - 1] = try parseTernary(allowCondition: true)
                    }
                }
                if sawColon {
                    value = .slice(value, parts[0], parts.count > 1 ? parts[1] : nil, parts.count > 2 ? parts[2] : nil)
                } else {
                    guard let key = parts[0] else { throw TemplateError("an empty subscript []") }
                    value = .item(value, key)
                }
            } else if peek() == .symbol("(") {
                let (positional, keywords) = try parseArguments()
                value = .call(value, positional, keywords)
            } else {
                return value
            }
        }
    }

    private mutating func parseArguments() throws -> ([TemplateExpression], [(String, TemplateExpression)]) {
        try expect(.symbol("("))
        var positional: [TemplateExpression] = []
        var keywords: [(String, TemplateExpression)] = []
        while !consume(.symbol(")")) {
            if case .name(let name) = peek(), peek(1) == .symbol("=") {
                position += 2
                keywords.append((name, try parseTernary(allowCondition: true)))
            } else {
                positional.append(try parseTernary(allowCondition: true))
            }
            if !consume(.symbol(",")) {
                try expect(.symbol(")"))
                break
            }
        }
        return (positional, keywords)
    }

    private mutating func parsePrimary() throws -> TemplateExpression {
        guard let token = next() else { throw TemplateError("an expression ends too early") }
        switch token {
        case .string(var text):
            // Adjacent literals join, as in Python.
            while case .string(let more) = peek() { text += more; position += 1 }
            return .literal(.string(text))
        case .int(let value): return .literal(.int(value))
        case .double(let value): return .literal(.double(value))
        case .name(let name):
            switch name {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(name)
            }
        case .symbol("("):
            let first = try parseTernary(allowCondition: true)
            if consume(.symbol(")")) { return first }
            var items = [first]
            while consume(.symbol(",")) {
                if peek() == .symbol(")") { break }
                items.append(try parseTernary(allowCondition: true))
            }
            try expect(.symbol(")"))
            return .list(items)
        case .symbol("["):
            var items: [TemplateExpression] = []
            while !consume(.symbol("]")) {
                items.append(try parseTernary(allowCondition: true))
                if !consume(.symbol(",")) { try expect(.symbol("]")); break }
            }
            return .list(items)
        case .symbol("{"):
            var pairs: [(TemplateExpression, TemplateExpression)] = []
            while !consume(.symbol("}")) {
                let key = try parseTernary(allowCondition: true)
                try expect(.symbol(":"))
                pairs.append((key, try parseTernary(allowCondition: true)))
                if !consume(.symbol(",")) { try expect(.symbol("}")); break }
            }
            return .dictionary(pairs)
        default:
            throw TemplateError("unexpected \(token) in an expression")
        }
    }
}
