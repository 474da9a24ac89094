import Foundation

extension Tokenizer {
    /// A step of `tokenizers`' decoder chain; each maps the list of token strings.
    enum Decoder: Sendable {
        case byteLevel
        case replace(Pattern, [Unicode.Scalar])
        case byteFallback
        case fuse
        case strip(Unicode.Scalar, start: Int, stop: Int)
        case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme)

        static func decode(_ tokens: [String], with decoders: [Decoder]) -> String {
            var tokens = tokens.map { Array($0.unicodeScalars) }
            for decoder in decoders { tokens = decoder.apply(tokens) }
            return tokens.map { String(scalars: $0) }.joined()
        }

        private func apply(_ tokens: [[Unicode.Scalar]]) -> [[Unicode.Scalar]] {
            switch self {
            case .byteLevel:
                // A token with a scalar outside the byte map (an added token, say) stands
                // for its own UTF-8 bytes, as in the reference.
                var bytes: [UInt8] = []
                for token in tokens {
                    let mapped = token.compactMap(ByteLevel.byte(for:))
                    bytes += mapped.count == token.count ? mapped : Array(String(scalars: token).utf8)
                }
                return [Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)]
            case .replace(let pattern, let content):
                return tokens.map { Tokenizer.replace(pattern, in: $0, with: content) }
            case .byteFallback:
                var output: [[Unicode.Scalar]] = []
                var pending: [UInt8] = []
                func flush() {
                    guard !pending.isEmpty else { return }
                    if let text = String(validating: pending, as: UTF8.self) {
                        output.append(Array(text.unicodeScalars))
                    } else {
                        output += Array(repeating: ["\u{FFFD}"], count: pending.count)
                    }
                    pending = []
                }
                for token in tokens {
                    if let byte = Self.fallbackByte(token) {
                        pending.append(byte)
                    } else {
                        flush()
                        output.append(token)
                    }
                }
                flush()
                return output
            case .fuse:
                return [tokens.flatMap { $0 }]
            case .strip(let content, let start, let stop):
                return tokens.map { token in
                    var token = token[...]
                    for _ in 0..<start where token.first == content { token = token.dropFirst() }
                    for _ in 0..<stop where token.last == content { token = token.dropLast() }
                    return Array(token)
                }
            case .metaspace(let replacement, let scheme):
                return tokens.enumerated().map { index, token in
                    token.compactMap { scalar -> Unicode.Scalar? in
                        guard scalar == replacement else { return scalar }
                        return index == 0 && scheme != .never ? nil : " "
                    }
                }
            }
        }

        /// The byte of a `<0xAB>` token.
        private static func fallbackByte(_ token: [Unicode.Scalar]) -> UInt8? {
            guard token.count == 6, token.starts(with: ["<", "0", "x"]), token.last == ">" else { return nil }
            return UInt8(String(scalars: token[3..<5]), radix: 16)
        }
    }

    /// What `add_special_tokens=True` adds around one sequence: the post-processor's
    /// `TemplateProcessing` (BOS, EOS), or nothing (`ByteLevel` only trims offsets).
    struct PostProcessor: Sendable {
        var prefix: [Int] = []
        var suffix: [Int] = []

        func apply(_ ids: [Int]) -> [Int] { prefix + ids + suffix }
    }
}

extension Tokenizer {
    /// The bytes token `id` stands for in text that goes on (not at the start of a
    /// sequence), or nil for a special token or an unknown id: what constrained decoding
    /// checks a candidate token against. A byte-level token is its bytes, a `<0xAB>` token
    /// its byte, a SentencePiece token its text with `▁` as a space.
    public func bytes(of id: Int) -> [UInt8]? {
        guard let token = tokensByID[id], !addedTokens.isSpecial(id) else { return nil }
        let scalars = Array(token.unicodeScalars)
        for decoder in decoders {
            switch decoder {
            case .byteLevel:
                let mapped = scalars.compactMap(ByteLevel.byte(for:))
                return mapped.count == scalars.count ? mapped : Array(token.utf8)
            case .byteFallback:
                if scalars.count == 6, scalars.starts(with: ["<", "0", "x"]), scalars.last == ">", let byte = UInt8(String(scalars: scalars[3..<5]), radix: 16) {
                    return [byte]
                }
            case .metaspace(let replacement, _):
                return Array(String(scalars: scalars.map { $0 == replacement ? " " : $0 }).utf8)
            case .replace, .fuse, .strip:
                continue
            }
        }
        return Array(Decoder.decode([token], with: decoders).utf8)
    }

    /// How many token ids the vocabulary and the added tokens use: one more than the largest.
    public var idCount: Int { (tokensByID.keys.max() ?? -1) + 1 }
}
