import Foundation

/// Why a tokenizer's files were refused: `field` names the part of `tokenizer.json` or
/// `tokenizer_config.json` at fault.
public struct TokenizerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// A Hugging Face tokenizer, encoding as the `tokenizers` library does, token for token:
/// byte-level BPE behind a regex split (Qwen2, Llama 3, GPT-2) and Metaspace BPE with byte
/// fallback (Mistral, Llama 2, in their legacy and current forms), with added and special
/// tokens, the post-processor's special tokens, and decoding back to text.
///
/// Text is handled as Unicode scalars throughout, never as Swift `Character`s or `String`
/// comparisons: those follow canonical equivalence and grapheme clusters, so `"é"` and
/// `"e\u{301}"` would be one vocabulary entry and `"▁\u{FE0F}"` one symbol, where the file
/// format has two.
public struct Tokenizer: Sendable {
    let vocabulary: [ScalarKey: Int]
    let tokensByID: [Int: String]
    /// `(left, right)` ids to the merge's rank and the id of the merged token.
    let merges: [MergePair: Merge]
    let addedTokens: AddedTokens
    let normalizers: [Normalizer]
    let preTokenizers: [PreTokenizer]
    let postProcessor: PostProcessor
    let decoders: [Decoder]
    let byteFallback: Bool
    let unknownTokenID: Int?
    let fuseUnknown: Bool
    let ignoreMerges: Bool
    let byteTokenIDs: [Int?]

    struct MergePair: Hashable, Sendable {
        var left: Int
        var right: Int
    }

    struct Merge: Sendable {
        var rank: Int
        var merged: Int
    }

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TokenizerError("cannot read \(url.path): \(error.localizedDescription)") }
        try self.init(data: data)
    }

    public init(data: Data) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError("tokenizer.json is not a JSON object")
        }
        if let model = root["model"] as? [String: Any], let type = model["type"] as? String, type != "BPE" {
            throw TokenizerError("model.type \"\(type)\" is not supported: only BPE models are (Llama, Mistral, Qwen2)")
        }
        // Foundation's dictionaries have String keys, which merge canonically equivalent
        // tokens ("é" and "e\u{301}"); the vocabulary is read again with exact keys.
        guard case .object(let exactRoot)? = try? TemplateValue.parseJSON(String(decoding: data, as: UTF8.self)),
              case .object(let model)? = exactRoot["model"], case .object(let vocabulary)? = model["vocab"]
        else {
            throw TokenizerError("tokenizer.json has no model.vocab object")
        }
        var exactVocabulary: [(String, Int)] = []
        for (token, value) in vocabulary.pairs {
            guard case .int(let id) = value else { throw TokenizerError("model.vocab[\(token.debugDescription)] is not an integer id") }
            exactVocabulary.append((token, id))
        }
        try self.init(root: root, vocabulary: exactVocabulary)
    }

    // MARK: Encoding

    /// The token ids of `text`, as `tokenizer.encode(text, add_special_tokens=...).ids`:
    /// with `addSpecialTokens`, the post-processor's tokens (a BOS, say) are added.
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        var ids: [Int] = []
        for segment in addedTokens.split(Array(text.unicodeScalars), normalize: normalize) {
            switch segment {
            case .added(let id):
                ids.append(id)
            case .text(let scalars, let startsText):
                for word in preTokenize(scalars, startsText: startsText) { ids += bpe(word) }
            }
        }
        return addSpecialTokens ? postProcessor.apply(ids) : ids
    }

    /// The id of a token, an added one included; nil when the vocabulary has none.
    public func id(of token: String) -> Int? {
        addedTokens.id(of: token) ?? vocabulary[ScalarKey(token)]
    }

    /// The text of one token id, as the vocabulary spells it.
    public func token(of id: Int) -> String? { tokensByID[id] }

    /// Byte-pair encoding of one pre-tokenized word, as `tokenizers`' BPE model does it:
    /// each scalar becomes its token (or its bytes' tokens with byte fallback, or the
    /// unknown token), then the adjacent pair of lowest merge rank merges, leftmost first,
    /// until no pair of the merges is left.
    private func bpe(_ word: [Unicode.Scalar]) -> [Int] {
        guard !word.isEmpty else { return [] }
        if ignoreMerges, let id = vocabulary[ScalarKey(word)] { return [id] }
        var symbols: [Int] = []
        var lastWasUnknown = false
        for scalar in word {
            if let id = vocabulary[ScalarKey([scalar])] {
                symbols.append(id)
                lastWasUnknown = false
            } else if byteFallback, case let bytes = Array(String(scalar).utf8), bytes.allSatisfy({ byteTokenIDs[Int($0)] != nil }) {
                symbols += bytes.map { byteTokenIDs[Int($0)]! }
                lastWasUnknown = false
            } else if let unknownTokenID {
                if !(fuseUnknown && lastWasUnknown) { symbols.append(unknownTokenID) }
                lastWasUnknown = true
            }
        }
        while symbols.count > 1 {
            var best: (rank: Int, index: Int, merged: Int)?
            for index in 0..<(symbols.count - 1) {
                if let merge = merges[MergePair(left: symbols[index], right: symbols[index + 1])], merge.rank < (best?.rank ?? .max) {
                    best = (merge.rank, index, merge.merged)
                }
            }
            guard let best else { break }
            symbols.replaceSubrange(best.index...(best.index + 1), with: [best.merged])
        }
        return symbols
    }

    // MARK: Decoding

    /// The text of `ids`, as `tokenizer.decode(ids, skip_special_tokens=...)`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let tokens = ids.compactMap { id -> String? in
            if skipSpecialTokens, addedTokens.isSpecial(id) { return nil }
            return tokensByID[id]
        }
        return Decoder.decode(tokens, with: decoders)
    }
}

/// A dictionary key that compares Unicode scalars exactly, as the file format does (a
/// `String` key would merge canonically equivalent spellings).
struct ScalarKey: Hashable, Sendable {
    let scalars: [Unicode.Scalar]
    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }
    init(_ text: String) { scalars = Array(text.unicodeScalars) }
}

extension String {
    /// A string of exactly these scalars.
    init(scalars: some Sequence<Unicode.Scalar>) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        self = String(view)
    }
}
