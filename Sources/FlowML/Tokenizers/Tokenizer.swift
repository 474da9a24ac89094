import Foundation

/// Why a `tokenizer.json` was refused.
public struct TokenizerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// A Hugging Face `tokenizer.json` with a BPE model, encoding as the `tokenizers` library
/// does, token for token: byte-level BPE behind a regex split (Qwen2, Llama 3, GPT-2) and
/// Metaspace BPE with byte fallback (Mistral, Llama 2), with added and special tokens, and
/// decoding back to text.
public struct Tokenizer: Sendable {
    struct AddedToken: Sendable {
        var id: Int
        var content: String
        var special: Bool
    }

    let vocabulary: [String: Int]
    let tokensByID: [Int: String]
    let mergeRanks: [Pair: Int]
    let addedTokens: [AddedToken]
    let normalizers: [Normalizer]
    let preTokenizers: [PreTokenizer]
    let decoders: [Decoder]
    let byteFallback: Bool
    let unknownToken: String?
    let fuseUnknown: Bool
    let ignoreMerges: Bool

    struct Pair: Hashable, Sendable {
        var left: String
        var right: String
    }

    enum Normalizer: Sendable {
        case prepend(String)
        case replace(String, String)
        case nfc, nfkc, lowercase
    }

    enum PreTokenizer: Sendable {
        case split(NSRegularExpressionBox, invert: Bool)
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
        case metaspace(replacement: String, prependAlways: Bool, split: Bool)
        case whitespaceSplit
    }

    enum Decoder: Sendable {
        case byteLevel
        case replace(String, String)
        case byteFallback
        case fuse
        case strip(String, start: Int, stop: Int)
        case metaspace(replacement: String, prependScheme: Bool)
    }

    /// The GPT-2 split that ByteLevel applies itself when `use_regex` is set.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TokenizerError("cannot read \(url.path): \(error)") }
        try self.init(data: data)
    }

    public init(data: Data) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError("tokenizer.json is not a JSON object")
        }
        guard let model = root["model"] as? [String: Any], (model["type"] as? String ?? "BPE") == "BPE",
              let vocabulary = model["vocab"] as? [String: Any]
        else {
            throw TokenizerError("only BPE models are supported (model.type \(String(describing: (root["model"] as? [String: Any])?["type"])))")
        }
        var vocab: [String: Int] = [:]
        for (token, id) in vocabulary { vocab[token] = (id as? NSNumber)?.intValue }
        var ranks: [Pair: Int] = [:]
        for (rank, merge) in (model["merges"] as? [Any] ?? []).enumerated() {
            if let pair = merge as? [String], pair.count == 2 {
                ranks[Pair(left: pair[0], right: pair[1])] = ranks[Pair(left: pair[0], right: pair[1])] ?? rank
            } else if let text = merge as? String, let space = text.firstIndex(of: " ") {
                let pair = Pair(left: String(text[..<space]), right: String(text[text.index(after: space)...]))
                ranks[pair] = ranks[pair] ?? rank
            } else {
                throw TokenizerError("merge \(rank) is neither [\"a\", \"b\"] nor \"a b\"")
            }
        }
        var added: [AddedToken] = []
        for token in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let id = (token["id"] as? NSNumber)?.intValue, let content = token["content"] as? String else { continue }
            added.append(AddedToken(id: id, content: content, special: token["special"] as? Bool ?? false))
            vocab[content] = vocab[content] ?? id
        }
        self.vocabulary = vocab
        var byID: [Int: String] = [:]
        for (token, id) in vocab { byID[id] = token }
        for token in added { byID[token.id] = token.content }
        self.tokensByID = byID
        self.mergeRanks = ranks
        // Longest first, so "<|im_start|>" wins over a shorter token it starts with.
        self.addedTokens = added.sorted { $0.content.count > $1.content.count }
        self.byteFallback = model["byte_fallback"] as? Bool ?? false
        self.unknownToken = model["unk_token"] as? String
        self.fuseUnknown = model["fuse_unk"] as? Bool ?? false
        self.ignoreMerges = model["ignore_merges"] as? Bool ?? false
        self.normalizers = try Self.normalizers(root["normalizer"])
        self.preTokenizers = try Self.preTokenizers(root["pre_tokenizer"])
        self.decoders = try Self.decoders(root["decoder"])
    }

    // MARK: Encoding

    /// The token ids of `text`, as `tokenizer.encode(text, add_special_tokens=False).ids`.
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        for segment in splitOnAddedTokens(text) {
            switch segment {
            case .added(let id):
                ids.append(id)
            case .text(let piece):
                let normalized = normalize(piece)
                for word in preTokenize(normalized) { ids += bpe(word) }
            }
        }
        return ids
    }

    enum Segment { case added(Int), text(String) }

    private func splitOnAddedTokens(_ text: String) -> [Segment] {
        guard !addedTokens.isEmpty else { return text.isEmpty ? [] : [.text(text)] }
        var segments: [Segment] = []
        var pending = ""
        var index = text.startIndex
        outer: while index < text.endIndex {
            for token in addedTokens where text[index...].hasPrefix(token.content) {
                if !pending.isEmpty { segments.append(.text(pending)); pending = "" }
                segments.append(.added(token.id))
                index = text.index(index, offsetBy: token.content.count)
                continue outer
            }
            pending.append(text[index])
            index = text.index(after: index)
        }
        if !pending.isEmpty { segments.append(.text(pending)) }
        return segments
    }

    private func normalize(_ text: String) -> String {
        var text = text
        for normalizer in normalizers {
            switch normalizer {
            case .prepend(let prefix): if !text.isEmpty { text = prefix + text }
            case .replace(let pattern, let content): text = text.replacingOccurrences(of: pattern, with: content)
            case .nfc: text = text.precomposedStringWithCanonicalMapping
            case .nfkc: text = text.precomposedStringWithCompatibilityMapping
            case .lowercase: text = text.lowercased()
            }
        }
        return text
    }

    private func preTokenize(_ text: String) -> [String] {
        var pieces = text.isEmpty ? [] : [text]
        for preTokenizer in preTokenizers {
            switch preTokenizer {
            case .split(let box, let invert):
                pieces = pieces.flatMap { Self.isolate($0, with: box.expression, invert: invert) }
            case .byteLevel(let addPrefixSpace, let useRegex):
                if useRegex {
                    let expression = try! NSRegularExpression(pattern: Self.gpt2Pattern)
                    pieces = pieces.flatMap { Self.isolate($0, with: expression, invert: false) }
                }
                pieces = pieces.enumerated().map { index, piece in
                    let prefixed = addPrefixSpace && index == 0 && !piece.hasPrefix(" ") ? " " + piece : piece
                    return String(String.UnicodeScalarView(prefixed.utf8.map { ByteLevel.scalar(for: $0) }))
                }
            case .metaspace(let replacement, let prependAlways, let split):
                pieces = pieces.flatMap { piece -> [String] in
                    var replaced = piece.replacingOccurrences(of: " ", with: replacement)
                    if prependAlways, !replaced.hasPrefix(replacement) { replaced = replacement + replaced }
                    guard split else { return [replaced] }
                    var words: [String] = []
                    var current = ""
                    for character in replaced {
                        if String(character) == replacement, !current.isEmpty { words.append(current); current = "" }
                        current.append(character)
                    }
                    if !current.isEmpty { words.append(current) }
                    return words
                }
            case .whitespaceSplit:
                pieces = pieces.flatMap { $0.split(whereSeparator: \.isWhitespace).map(String.init) }
            }
        }
        return pieces
    }

    /// Splits `text` into the regex's matches and the gaps between them, in order.
    static func isolate(_ text: String, with expression: NSRegularExpression, invert: Bool) -> [String] {
        let utf16 = text as NSString
        var pieces: [String] = []
        var last = 0
        for match in expression.matches(in: text, range: NSRange(location: 0, length: utf16.length)) where match.range.length > 0 {
            if match.range.location > last { pieces.append(utf16.substring(with: NSRange(location: last, length: match.range.location - last))) }
            pieces.append(utf16.substring(with: match.range))
            last = match.range.location + match.range.length
        }
        if last < utf16.length { pieces.append(utf16.substring(from: last)) }
        return pieces
    }

    /// Byte-pair encoding of one word: merge the lowest-ranked adjacent pair until none
    /// is left, then map the symbols to ids (bytes, or the unknown token, for symbols
    /// outside the vocabulary).
    private func bpe(_ word: String) -> [Int] {
        if ignoreMerges, let id = vocabulary[word] { return [id] }
        var symbols = word.unicodeScalars.map { String($0) }
        while symbols.count > 1 {
            var best: (rank: Int, index: Int)?
            for index in 0..<(symbols.count - 1) {
                if let rank = mergeRanks[Pair(left: symbols[index], right: symbols[index + 1])], rank < (best?.rank ?? .max) {
                    best = (rank, index)
                }
            }
            guard let best else { break }
            let pair = Pair(left: symbols[best.index], right: symbols[best.index + 1])
            // Merge every occurrence of the pair, left to right, as the reference does.
            var merged: [String] = []
            var index = 0
            while index < symbols.count {
                if index < symbols.count - 1, symbols[index] == pair.left, symbols[index + 1] == pair.right {
                    merged.append(pair.left + pair.right)
                    index += 2
                } else {
                    merged.append(symbols[index])
                    index += 1
                }
            }
            symbols = merged
        }
        var ids: [Int] = []
        var lastWasUnknown = false
        for symbol in symbols {
            if let id = vocabulary[symbol] {
                ids.append(id)
                lastWasUnknown = false
            } else if byteFallback, case let mapped = symbol.utf8.compactMap({ vocabulary[String(format: "<0x%02X>", $0)] }), mapped.count == symbol.utf8.count {
                ids += mapped
                lastWasUnknown = false
            } else if let unknownToken, let id = vocabulary[unknownToken] {
                if !(fuseUnknown && lastWasUnknown) { ids.append(id) }
                lastWasUnknown = true
            }
        }
        return ids
    }

    // MARK: Decoding

    /// The text of `ids`, as `tokenizer.decode(ids, skip_special_tokens=False)`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let special = Set(addedTokens.filter(\.special).map(\.id))
        var tokens = ids.compactMap { id -> String? in
            if skipSpecialTokens, special.contains(id) { return nil }
            return tokensByID[id]
        }
        for decoder in decoders {
            switch decoder {
            case .byteLevel:
                let bytes = tokens.joined().unicodeScalars.map { ByteLevel.byte(for: $0) ?? UInt8(ascii: "?") }
                tokens = [String(decoding: bytes, as: UTF8.self)]
            case .replace(let pattern, let content):
                tokens = tokens.map { $0.replacingOccurrences(of: pattern, with: content) }
            case .byteFallback:
                var output: [String] = []
                var pending: [UInt8] = []
                func flush() {
                    guard !pending.isEmpty else { return }
                    if let text = String(validating: pending, as: UTF8.self) {
                        output.append(text)
                    } else {
                        output += Array(repeating: "\u{FFFD}", count: pending.count)
                    }
                    pending = []
                }
                for token in tokens {
                    if token.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"), let byte = UInt8(token.dropFirst(3).dropLast(), radix: 16) {
                        pending.append(byte)
                    } else {
                        flush()
                        output.append(token)
                    }
                }
                flush()
                tokens = output
            case .fuse:
                tokens = [tokens.joined()]
            case .strip(let content, let start, let stop):
                tokens = tokens.map { token in
                    var token = Substring(token)
                    for _ in 0..<start where token.hasPrefix(content) { token = token.dropFirst(content.count) }
                    for _ in 0..<stop where token.hasSuffix(content) { token = token.dropLast(content.count) }
                    return String(token)
                }
            case .metaspace(let replacement, let prependScheme):
                tokens = tokens.enumerated().map { index, token in
                    var text = token.replacingOccurrences(of: replacement, with: " ")
                    if prependScheme, index == 0, text.hasPrefix(" ") { text.removeFirst() }
                    return text
                }
            }
        }
        return tokens.joined()
    }

    // MARK: Reading the configuration

    private static func components(_ value: Any?, listKey: String) -> [[String: Any]] {
        guard let object = value as? [String: Any] else { return [] }
        if object["type"] as? String == "Sequence" { return (object[listKey] as? [[String: Any]]) ?? [] }
        return [object]
    }

    private static func normalizers(_ value: Any?) throws -> [Normalizer] {
        try components(value, listKey: "normalizers").map { object in
            switch object["type"] as? String {
            case "Prepend": return .prepend(object["prepend"] as? String ?? "")
            case "Replace": return .replace(try pattern(object), object["content"] as? String ?? "")
            case "NFC": return .nfc
            case "NFKC": return .nfkc
            case "Lowercase": return .lowercase
            case let other: throw TokenizerError("normalizer \(other ?? "?") is not supported (Prepend, Replace, NFC, NFKC, Lowercase are)")
            }
        }
    }

    private static func preTokenizers(_ value: Any?) throws -> [PreTokenizer] {
        try components(value, listKey: "pretokenizers").map { object in
            switch object["type"] as? String {
            case "Split":
                guard (object["behavior"] as? String ?? "Isolated") == "Isolated" else {
                    throw TokenizerError("Split pre-tokenizers with behavior \(object["behavior"] ?? "?") are not supported (Isolated is)")
                }
                let source: String
                if let regex = (object["pattern"] as? [String: Any])?["Regex"] as? String {
                    source = regex
                } else {
                    source = NSRegularExpression.escapedPattern(for: try pattern(object))
                }
                do {
                    return .split(NSRegularExpressionBox(try NSRegularExpression(pattern: source)), invert: object["invert"] as? Bool ?? false)
                } catch {
                    throw TokenizerError("the Split regex does not compile: \(error)")
                }
            case "ByteLevel":
                return .byteLevel(addPrefixSpace: object["add_prefix_space"] as? Bool ?? false, useRegex: object["use_regex"] as? Bool ?? true)
            case "Metaspace":
                let scheme = object["prepend_scheme"] as? String ?? ((object["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
                return .metaspace(replacement: object["replacement"] as? String ?? "▁", prependAlways: scheme == "always", split: object["split"] as? Bool ?? true)
            case "WhitespaceSplit":
                return .whitespaceSplit
            case let other:
                throw TokenizerError("pre-tokenizer \(other ?? "?") is not supported (Split, ByteLevel, Metaspace, WhitespaceSplit are)")
            }
        }
    }

    private static func decoders(_ value: Any?) throws -> [Decoder] {
        try components(value, listKey: "decoders").map { object in
            switch object["type"] as? String {
            case "ByteLevel": return .byteLevel
            case "Replace": return .replace(try pattern(object), object["content"] as? String ?? "")
            case "ByteFallback": return .byteFallback
            case "Fuse": return .fuse
            case "Strip": return .strip(object["content"] as? String ?? " ", start: (object["start"] as? NSNumber)?.intValue ?? 0, stop: (object["stop"] as? NSNumber)?.intValue ?? 0)
            case "Metaspace":
                return .metaspace(replacement: object["replacement"] as? String ?? "▁", prependScheme: (object["prepend_scheme"] as? String ?? "always") != "never")
            case let other: throw TokenizerError("decoder \(other ?? "?") is not supported (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace are)")
            }
        }
    }

    private static func pattern(_ object: [String: Any]) throws -> String {
        guard let pattern = (object["pattern"] as? [String: Any])?["String"] as? String else {
            throw TokenizerError("\(object["type"] ?? "?") needs a literal pattern {\"String\": ...}")
        }
        return pattern
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
