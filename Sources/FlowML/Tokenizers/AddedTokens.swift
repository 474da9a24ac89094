/// The `added_tokens` of a `tokenizer.json`, found in text as `tokenizers`' added
/// vocabulary finds them: tokens with `normalized: false` (special tokens, usually) in the
/// raw text, the others in the normalized text; leftmost first, the longest of those that
/// start there; `single_word` only where no letter or digit touches it; `lstrip` and
/// `rstrip` taking the whitespace beside them into the match.
struct AddedTokens: Sendable {
    struct Token: Sendable {
        var id: Int
        var content: [Unicode.Scalar]
        var special: Bool
        var singleWord: Bool
        var leftStrip: Bool
        var rightStrip: Bool
        var normalized: Bool
    }

    enum Segment {
        case added(Int)
        /// Text between added tokens, normalized; `startsText` when it begins the input
        /// (Metaspace's `prepend_scheme: first` prepends to that piece alone).
        case text([Unicode.Scalar], startsText: Bool)
    }

    private let raw: [Token]
    private let normalizedTokens: [Token]
    private let byContent: [ScalarKey: Int]
    private let specialIDs: Set<Int>

    init(_ tokens: [Token]) {
        // Longest first, so that among the tokens starting at one place the longest wins.
        let sorted = tokens.sorted { $0.content.count > $1.content.count }
        raw = sorted.filter { !$0.normalized }
        normalizedTokens = sorted.filter(\.normalized)
        byContent = Dictionary(tokens.map { (ScalarKey($0.content), $0.id) }, uniquingKeysWith: { first, _ in first })
        specialIDs = Set(tokens.filter(\.special).map(\.id))
    }

    func id(of content: String) -> Int? { byContent[ScalarKey(content)] }
    func isSpecial(_ id: Int) -> Bool { specialIDs.contains(id) }
    /// The text of each special token.
    var specialContents: [[Unicode.Scalar]] { (raw + normalizedTokens).filter(\.special).map(\.content) }

    /// `text` cut at the added tokens, the pieces between them normalized by `normalize`.
    func split(_ text: [Unicode.Scalar], normalize: ([Unicode.Scalar]) -> [Unicode.Scalar]) -> [Segment] {
        var segments: [Segment] = []
        for piece in Self.find(raw, in: text) {
            switch piece {
            case .token(let id):
                segments.append(.added(id))
            case .text(let range):
                let normalized = normalize(Array(text[range]))
                for inner in Self.find(normalizedTokens, in: normalized) {
                    switch inner {
                    case .token(let id):
                        segments.append(.added(id))
                    case .text(let innerRange):
                        segments.append(.text(Array(normalized[innerRange]), startsText: range.lowerBound == 0 && innerRange.lowerBound == 0))
                    }
                }
            }
        }
        return segments
    }

    private enum Piece {
        case token(Int)
        case text(Range<Int>)
    }

    private static func find(_ tokens: [Token], in text: [Unicode.Scalar]) -> [Piece] {
        guard !tokens.isEmpty else { return text.isEmpty ? [] : [.text(0..<text.count)] }
        var pieces: [Piece] = []
        var textStart = 0
        var position = 0
        while position < text.count {
            guard let token = tokens.first(where: { text[position...].starts(with: $0.content) }) else {
                position += 1
                continue
            }
            var start = position
            var stop = position + token.content.count
            if token.singleWord {
                let touchesBefore = start > 0 && isWordScalar(text[start - 1])
                let touchesAfter = stop < text.count && isWordScalar(text[stop])
                if touchesBefore || touchesAfter {
                    // As the reference's matcher does: the search resumes after the match.
                    position = stop
                    continue
                }
            }
            if token.leftStrip {
                while start > textStart, text[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rightStrip {
                while stop < text.count, text[stop].properties.isWhitespace { stop += 1 }
            }
            if textStart < start { pieces.append(.text(textStart..<start)) }
            pieces.append(.token(token.id))
            textStart = stop
            position = stop
        }
        if textStart < text.count { pieces.append(.text(textStart..<text.count)) }
        return pieces
    }

    /// A word character for `single_word`, as the reference tests it: alphanumeric
    /// (Rust's `char::is_alphanumeric`) or an underscore.
    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "_" || scalar.properties.isAlphabetic || scalar.properties.numericType != nil
    }
}
