import Foundation

/// The steps of `tokenizers`' pipeline before the model: normalizers, then pre-tokenizers.
extension Tokenizer {
    enum Normalizer: Sendable {
        case prepend([Unicode.Scalar])
        case replace(Pattern, [Unicode.Scalar])
        case nfc, nfd, nfkc, nfkd, lowercase
        case strip(left: Bool, right: Bool)
    }

    enum PrependScheme: String, Sendable {
        case always, first, never
    }

    enum SplitBehavior: String, Sendable {
        case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
        case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
    }

    enum PreTokenizer: Sendable {
        case split(Pattern, behavior: SplitBehavior, invert: Bool)
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
        case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
        case whitespaceSplit
    }

    /// A literal or a regular expression, as `{"String": …}` or `{"Regex": …}`.
    enum Pattern: Sendable {
        case literal([Unicode.Scalar])
        case regex(NSRegularExpressionBox)

        /// The ranges (in scalars) of `text` the pattern matches, in order, none empty.
        func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
            switch self {
            case .literal(let literal):
                guard !literal.isEmpty else { return [] }
                var ranges: [Range<Int>] = []
                var index = 0
                while index + literal.count <= text.count {
                    if text[index..<(index + literal.count)].elementsEqual(literal) {
                        ranges.append(index..<(index + literal.count))
                        index += literal.count
                    } else {
                        index += 1
                    }
                }
                return ranges
            case .regex(let box):
                // NSRegularExpression counts in UTF-16; map its offsets back to scalars.
                let string = String(scalars: text)
                var scalarAtUTF16: [Int] = []
                scalarAtUTF16.reserveCapacity(text.count * 2 + 1)
                for (index, scalar) in text.enumerated() {
                    for _ in 0..<scalar.utf16.count { scalarAtUTF16.append(index) }
                }
                scalarAtUTF16.append(text.count)
                let length = (string as NSString).length
                return box.expression.matches(in: string, range: NSRange(location: 0, length: length)).compactMap { match in
                    guard match.range.length > 0 else { return nil }
                    return scalarAtUTF16[match.range.location]..<scalarAtUTF16[match.range.location + match.range.length]
                }
            }
        }
    }

    /// The GPT-2 split that ByteLevel applies itself when `use_regex` is set.
    static let gpt2Split = Pattern.regex(NSRegularExpressionBox(try! NSRegularExpression(
        pattern: #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#)))

    func normalize(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var text = text
        for normalizer in normalizers {
            switch normalizer {
            case .prepend(let prefix): if !text.isEmpty { text = prefix + text }
            case .replace(let pattern, let content): text = Self.replace(pattern, in: text, with: content)
            case .nfc: text = Array(String(scalars: text).precomposedStringWithCanonicalMapping.unicodeScalars)
            case .nfd: text = Array(String(scalars: text).decomposedStringWithCanonicalMapping.unicodeScalars)
            case .nfkc: text = Array(String(scalars: text).precomposedStringWithCompatibilityMapping.unicodeScalars)
            case .nfkd: text = Array(String(scalars: text).decomposedStringWithCompatibilityMapping.unicodeScalars)
            case .lowercase: text = text.flatMap { $0.properties.lowercaseMapping.unicodeScalars }
            case .strip(let left, let right):
                if left { text = Array(text.drop { $0.properties.isWhitespace }) }
                if right { while let last = text.last, last.properties.isWhitespace { text.removeLast() } }
            }
        }
        return text
    }

    static func replace(_ pattern: Pattern, in text: [Unicode.Scalar], with content: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        var last = 0
        for range in pattern.matches(in: text) {
            result += text[last..<range.lowerBound]
            result += content
            last = range.upperBound
        }
        result += text[last...]
        return result
    }

    /// The words of one piece of text between added tokens; `startsText` when the piece
    /// begins the input.
    func preTokenize(_ text: [Unicode.Scalar], startsText: Bool) -> [[Unicode.Scalar]] {
        // Each piece remembers whether it begins the input, for Metaspace's `first`.
        var pieces: [(scalars: [Unicode.Scalar], first: Bool)] = text.isEmpty ? [] : [(text, startsText)]
        for preTokenizer in preTokenizers {
            switch preTokenizer {
            case .split(let pattern, let behavior, let invert):
                pieces = pieces.flatMap { piece in
                    Self.split(piece.scalars, pattern: pattern, behavior: behavior, invert: invert).enumerated().map { ($1, piece.first && $0 == 0) }
                }
            case .byteLevel(let addPrefixSpace, let useRegex):
                pieces = pieces.flatMap { piece -> [([Unicode.Scalar], Bool)] in
                    var scalars = piece.scalars
                    if addPrefixSpace, scalars.first != " " { scalars.insert(" ", at: 0) }
                    let words = useRegex ? Self.split(scalars, pattern: Self.gpt2Split, behavior: .isolated, invert: false) : [scalars]
                    return words.enumerated().map { index, word in
                        (String(scalars: word).utf8.map { ByteLevel.scalar(for: $0) }, piece.first && index == 0)
                    }
                }
            case .metaspace(let replacement, let scheme, let split):
                pieces = pieces.flatMap { piece -> [([Unicode.Scalar], Bool)] in
                    var scalars = piece.scalars.map { $0 == " " ? replacement : $0 }
                    let prepends = scheme == .always || (scheme == .first && piece.first)
                    if prepends, scalars.first != replacement { scalars.insert(replacement, at: 0) }
                    guard split else { return [(scalars, piece.first)] }
                    var words: [[Unicode.Scalar]] = []
                    var current: [Unicode.Scalar] = []
                    for scalar in scalars {
                        if scalar == replacement, !current.isEmpty { words.append(current); current = [] }
                        current.append(scalar)
                    }
                    if !current.isEmpty { words.append(current) }
                    return words.enumerated().map { ($1, piece.first && $0 == 0) }
                }
            case .whitespaceSplit:
                pieces = pieces.flatMap { piece in
                    piece.scalars.split { $0.properties.isWhitespace }.enumerated().map { (Array($1), piece.first && $0 == 0) }
                }
            }
        }
        return pieces.map(\.scalars)
    }

    /// `text` cut at the pattern's matches, the matches kept, dropped or joined to a
    /// neighbour as `behavior` says (with `invert`, what does not match is the delimiter).
    static func split(_ text: [Unicode.Scalar], pattern: Pattern, behavior: SplitBehavior, invert: Bool) -> [[Unicode.Scalar]] {
        var parts: [(range: Range<Int>, isDelimiter: Bool)] = []
        var last = 0
        for range in pattern.matches(in: text) {
            if range.lowerBound > last { parts.append((last..<range.lowerBound, invert)) }
            parts.append((range, !invert))
            last = range.upperBound
        }
        if last < text.count { parts.append((last..<text.count, invert)) }
        var pieces: [[Unicode.Scalar]] = []
        var pendingDelimiter: [Unicode.Scalar] = []
        var previousWasDelimiter = false
        for part in parts {
            let scalars = Array(text[part.range])
            switch behavior {
            case .isolated:
                pieces.append(scalars)
            case .removed:
                if !part.isDelimiter { pieces.append(scalars) }
            case .mergedWithPrevious:
                if part.isDelimiter, !pieces.isEmpty { pieces[pieces.count - 1] += scalars } else { pieces.append(scalars) }
            case .mergedWithNext:
                if part.isDelimiter {
                    pendingDelimiter += scalars
                } else {
                    pieces.append(pendingDelimiter + scalars)
                    pendingDelimiter = []
                }
            case .contiguous:
                if part.isDelimiter, previousWasDelimiter { pieces[pieces.count - 1] += scalars } else { pieces.append(scalars) }
            }
            previousWasDelimiter = part.isDelimiter
        }
        if !pendingDelimiter.isEmpty { pieces.append(pendingDelimiter) }
        return pieces.filter { !$0.isEmpty }
    }
}

/// `NSRegularExpression` is immutable and thread-safe but not marked `Sendable`.
struct NSRegularExpressionBox: @unchecked Sendable {
    let expression: NSRegularExpression
    init(_ expression: NSRegularExpression) { self.expression = expression }
}

/// GPT-2's reversible map of the 256 byte values to printable characters.
enum ByteLevel {
    static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let bytes: [Unicode.Scalar: UInt8] = Dictionary(uniqueKeysWithValues: scalars.enumerated().map { ($1, UInt8($0)) })

    static func scalar(for byte: UInt8) -> Unicode.Scalar { scalars[Int(byte)] }
    static func byte(for scalar: Unicode.Scalar) -> UInt8? { bytes[scalar] }
}
