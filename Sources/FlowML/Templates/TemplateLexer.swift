/// Cuts a Jinja template into text and tags, with Jinja's whitespace control as
/// Transformers configures it: `trim_blocks` (the newline after a block tag goes),
/// `lstrip_blocks` (spaces before a block tag on its line go) and `-` on either side of a
/// tag (all whitespace on that side goes).
struct TemplateLexer {
    enum Token: Equatable {
        case name(String)
        case string(String)
        case int(Int)
        case double(Double)
        case symbol(String)
    }

    enum Piece {
        case text(String)
        case output([Token])
        case statement([Token])
    }

    static func pieces(of template: String) throws -> [Piece] {
        // Jinja drops one newline at the very end of a template (keep_trailing_newline off).
        var source = Array(template.unicodeScalars)
        if source.last == "\n" { source.removeLast() }
        if source.last == "\r" { source.removeLast() }
        var pieces: [Piece] = []
        var text: [Unicode.Scalar] = []
        var position = 0
        var trimNextNewline = false
        var stripNextWhitespace = false
        // Whether the text since the last tag began a line (Jinja's `line_starting`).
        var segmentStartsLine = true

        func flushText() {
            if !text.isEmpty { pieces.append(.text(String(scalars: text))) }
            text = []
        }

        while position < source.count {
            let opener = position + 1 < source.count && source[position] == "{" ? source[position + 1] : nil
            guard let opener, opener == "{" || opener == "%" || opener == "#" else {
                let scalar = source[position]
                position += 1
                if stripNextWhitespace, scalar.properties.isWhitespace {
                    segmentStartsLine = scalar == "\n"
                    continue
                }
                stripNextWhitespace = false
                if trimNextNewline {
                    trimNextNewline = false
                    if scalar == "\n" {
                        segmentStartsLine = true
                        continue
                    }
                }
                text.append(scalar)
                continue
            }
            stripNextWhitespace = false
            trimNextNewline = false
            let isBlock = opener != "{"
            var contentStart = position + 2
            if contentStart < source.count, source[contentStart] == "-" {
                while let last = text.last, last.properties.isWhitespace { text.removeLast() }
                contentStart += 1
            } else if contentStart < source.count, source[contentStart] == "+" {
                contentStart += 1
            } else if isBlock {
                // lstrip_blocks: only when nothing but spaces and tabs stand before the tag on its line.
                var index = text.count
                while index > 0, text[index - 1] == " " || text[index - 1] == "\t" { index -= 1 }
                if index > 0 ? text[index - 1] == "\n" : segmentStartsLine { text.removeSubrange(index...) }
            }
            flushText()
            segmentStartsLine = false
            let closing: Unicode.Scalar = opener == "{" ? "}" : (opener == "%" ? "%" : "#")
            if opener == "#" {
                var index = contentStart
                while index + 1 < source.count, !(source[index] == "#" && source[index + 1] == "}") { index += 1 }
                guard index + 1 < source.count else { throw TemplateError("a comment {# is never closed") }
                let stripsAfter = index > contentStart && source[index - 1] == "-"
                position = index + 2
                if stripsAfter { stripNextWhitespace = true } else { trimNextNewline = true }
                continue
            }
            var scanner = TokenScanner(source: source, position: contentStart)
            let (tokens, stripsAfter) = try scanner.tokens(until: closing)
            position = scanner.position
            pieces.append(isBlock ? .statement(tokens) : .output(tokens))
            if stripsAfter { stripNextWhitespace = true } else if isBlock { trimNextNewline = true }
        }
        flushText()
        return pieces
    }
}

/// The tokens of one tag, up to its closing `}}` or `%}` (a `-` before it strips the
/// whitespace after the tag).
private struct TokenScanner {
    let source: [Unicode.Scalar]
    var position: Int

    mutating func tokens(until closing: Unicode.Scalar) throws -> ([TemplateLexer.Token], Bool) {
        var tokens: [TemplateLexer.Token] = []
        while true {
            while position < source.count, source[position].properties.isWhitespace { position += 1 }
            guard position < source.count else { throw TemplateError("a tag is never closed (expected \(closing)})") }
            let scalar = source[position]
            let next = position + 1 < source.count ? source[position + 1] : nil
            let afterNext = position + 2 < source.count ? source[position + 2] : nil
            if scalar == closing, next == "}" {
                position += 2
                return (tokens, false)
            }
            if scalar == "-", next == closing, afterNext == "}" {
                position += 3
                return (tokens, true)
            }
            if scalar == "'" || scalar == "\"" {
                tokens.append(.string(try string(quote: scalar)))
            } else if ("0"..."9").contains(scalar) {
                let start = position
                while position < source.count, ("0"..."9").contains(source[position]) || source[position] == "_" { position += 1 }
                var isDouble = false
                if position + 1 < source.count, source[position] == ".", ("0"..."9").contains(source[position + 1]) {
                    isDouble = true
                    position += 1
                    while position < source.count, ("0"..."9").contains(source[position]) { position += 1 }
                }
                let literal = String(scalars: source[start..<position]).replacingOccurrences(of: "_", with: "")
                tokens.append(isDouble ? .double(Double(literal)!) : .int(Int(literal)!))
            } else if scalar == "_" || scalar.properties.isAlphabetic {
                let start = position
                while position < source.count, source[position] == "_" || source[position].properties.isAlphabetic || ("0"..."9").contains(source[position]) {
                    position += 1
                }
                tokens.append(.name(String(scalars: source[start..<position])))
            } else {
                let two = next.map { String(scalars: [scalar, $0]) } ?? ""
                if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
                    tokens.append(.symbol(two))
                    position += 2
                } else if "+-*/%~<>()[]{}.,:|=".unicodeScalars.contains(scalar) {
                    tokens.append(.symbol(String(scalar)))
                    position += 1
                } else {
                    throw TemplateError("unexpected character '\(scalar)' in a tag")
                }
            }
        }
    }

    /// A string literal with Python's escapes (`'\n'` in a template is a newline).
    private mutating func string(quote: Unicode.Scalar) throws -> String {
        position += 1
        var out = String.UnicodeScalarView()
        while position < source.count {
            let scalar = source[position]
            position += 1
            if scalar == quote { return String(out) }
            guard scalar == "\\", position < source.count else { out.append(scalar); continue }
            let escape = source[position]
            position += 1
            switch escape {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\", "'", "\"": out.append(escape)
            case "u":
                if position + 4 <= source.count, let code = UInt32(String(scalars: source[position..<(position + 4)]), radix: 16), let value = Unicode.Scalar(code) {
                    out.append(value)
                    position += 4
                } else {
                    out.append("\\"); out.append(escape)
                }
            default:
                out.append("\\"); out.append(escape)
            }
        }
        throw TemplateError("a string in a tag is never closed")
    }
}
