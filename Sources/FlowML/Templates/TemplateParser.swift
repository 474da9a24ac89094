/// Parses the lexer's pieces into nodes, by recursive descent with Jinja's precedence:
/// `if`-`else` < `or` < `and` < `not` < comparisons and `in` < `~` < `+ -` < `* / // %`
/// < unary minus < filters and tests < calls, attributes and subscripts.
struct TemplateParser {
    private var pieces: [TemplateLexer.Piece]
    private var index = 0

    static func parse(_ template: String) throws -> [TemplateNode] {
        var parser = TemplateParser(pieces: try TemplateLexer.pieces(of: template))
        let (nodes, end) = try parser.nodes(until: [])
        if let end { throw TemplateError("{% \(end) %} has no block to end") }
        return nodes
    }

    private init(pieces: [TemplateLexer.Piece]) { self.pieces = pieces }

    /// Nodes up to a statement whose first word is in `ends`; returns that word.
    private mutating func nodes(until ends: Set<String>) throws -> ([TemplateNode], String?) {
        var nodes: [TemplateNode] = []
        while index < pieces.count {
            let piece = pieces[index]
            index += 1
            switch piece {
            case .text(let text):
                nodes.append(.text(text))
            case .output(let tokens):
                var expression = ExpressionParser(tokens: tokens)
                nodes.append(.output(try expression.parseWhole()))
            case .statement(let tokens):
                guard case .name(let keyword) = tokens.first else { throw TemplateError("a {% %} tag must start with a keyword") }
                if ends.contains(keyword) {
                    index -= 1
                    return (nodes, keyword)
                }
                nodes.append(try statement(keyword, Array(tokens.dropFirst())))
            }
        }
        guard ends.isEmpty else { throw TemplateError("a block is never closed (expected one of \(ends.sorted().joined(separator: ", ")))") }
        return (nodes, nil)
    }

    /// The tokens of the statement the last `nodes(until:)` stopped at, consumed.
    private mutating func takeEnd() -> [TemplateLexer.Token] {
        guard case .statement(let tokens) = pieces[index] else { return [] }
        index += 1
        return Array(tokens.dropFirst())
    }

    private mutating func statement(_ keyword: String, _ tokens: [TemplateLexer.Token]) throws -> TemplateNode {
        var expression = ExpressionParser(tokens: tokens)
        switch keyword {
        case "if":
            var branches: [(TemplateExpression, [TemplateNode])] = []
            var condition = try expression.parseWhole()
            while true {
                let (body, end) = try nodes(until: ["elif", "else", "endif"])
                let endTokens = takeEnd()
                branches.append((condition, body))
                switch end {
                case "elif":
                    var next = ExpressionParser(tokens: endTokens)
                    condition = try next.parseWhole()
                case "else":
                    let (elseBody, _) = try nodes(until: ["endif"])
                    _ = takeEnd()
                    return .conditional(branches: branches, elseBody: elseBody)
                default:
                    return .conditional(branches: branches, elseBody: [])
                }
            }
        case "for":
            var targets: [String] = []
            repeat {
                guard case .name(let name) = expression.next() else { throw TemplateError("for needs a loop variable") }
                targets.append(name)
            } while expression.consume(.symbol(","))
            guard expression.consume(.name("in")) else { throw TemplateError("for needs 'in'") }
            let iterable = try expression.parseTernary(allowCondition: false)
            let condition = expression.consume(.name("if")) ? try expression.parseOr() : nil
            guard expression.atEnd else { throw TemplateError("unexpected words after the for loop's iterable") }
            let (body, end) = try nodes(until: ["else", "endfor"])
            _ = takeEnd()
            var elseBody: [TemplateNode] = []
            if end == "else" {
                elseBody = try nodes(until: ["endfor"]).0
                _ = takeEnd()
            }
            return .forLoop(targets: targets, iterable: iterable, condition: condition, body: body, elseBody: elseBody)
        case "set":
            var targets: [String] = []
            var attribute: String?
            repeat {
                guard case .name(let name) = expression.next() else { throw TemplateError("set needs a name") }
                targets.append(name)
                if expression.consume(.symbol(".")) {
                    guard case .name(let member) = expression.next() else { throw TemplateError("set needs an attribute name after '.'") }
                    attribute = member
                }
            } while expression.consume(.symbol(","))
            guard expression.consume(.symbol("=")) else {
                guard targets.count == 1, expression.atEnd else { throw TemplateError("set needs '='") }
                let (body, _) = try nodes(until: ["endset"])
                _ = takeEnd()
                return .assignBlock(name: targets[0], body: body)
            }
            return .assign(targets: targets, attribute: attribute, value: try expression.parseWhole())
        case "break": return .breakLoop
        case "continue": return .continueLoop
        case "generation":
            let (body, _) = try nodes(until: ["endgeneration"])
            _ = takeEnd()
            return .generation(body)
        default:
            throw TemplateError("{% \(keyword) %} is not supported in chat templates (if, for, set, break, continue, generation are)")
        }
    }
}
