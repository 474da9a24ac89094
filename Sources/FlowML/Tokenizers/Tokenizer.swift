import Foundation
import HeapModule

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
        // Read with exact keys: Foundation's dictionaries have String keys, which merge
        // canonically equivalent tokens ("é" and "e\u{301}").
        let root: TemplateValue
        do {
            root = try OrderedJSON.parse(Array(data))
        } catch {
            throw TokenizerError("tokenizer.json is not JSON: \(error)")
        }
        guard let object = root.objectValue else { throw TokenizerError("tokenizer.json is not a JSON object") }
        try self.init(root: object)
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

    /// Byte-pair encoding of one pre-tokenized word, as `tokenizers`' BPE model does it:
    /// each scalar becomes its token (or its bytes' tokens with byte fallback, or the
    /// unknown token), then the adjacent pair of lowest merge rank merges, leftmost first,
    /// until no pair of the merges is left.
    ///
    /// The pairs wait in a heap and the symbols form a linked list, so a word costs
    /// O(n log n) merges' work, not O(n²) scans: Metaspace without `split` (Mistral v0.3)
    /// makes a whole text one word.
    private func bpe(_ word: [Unicode.Scalar]) -> [Int] {
        guard !word.isEmpty else { return [] }
        if ignoreMerges, let id = vocabulary[ScalarKey(word)] { return [id] }
        var ids: [Int] = []
        var lastWasUnknown = false
        for scalar in word {
            if let id = vocabulary[ScalarKey([scalar])] {
                ids.append(id)
                lastWasUnknown = false
            } else if byteFallback, case let bytes = Array(String(scalar).utf8), bytes.allSatisfy({ byteTokenIDs[Int($0)] != nil }) {
                ids += bytes.map { byteTokenIDs[Int($0)]! }
                lastWasUnknown = false
            } else if let unknownTokenID {
                if !(fuseUnknown && lastWasUnknown) { ids.append(unknownTokenID) }
                lastWasUnknown = true
            }
        }
        guard ids.count > 1 else { return ids }
        var next = Array(1...ids.count)
        next[ids.count - 1] = -1
        var previous = Array(-1..<(ids.count - 1))
        var alive = [Bool](repeating: true, count: ids.count)
        var candidates = Heap<PendingMerge>()
        func consider(_ left: Int) {
            let right = next[left]
            guard right >= 0, let merge = merges[MergePair(left: ids[left], right: ids[right])] else { return }
            candidates.insert(PendingMerge(rank: merge.rank, position: left, merged: merge.merged))
        }
        for position in 0..<(ids.count - 1) { consider(position) }
        while let candidate = candidates.popMin() {
            let left = candidate.position
            let right = next[left]
            // A candidate outlived by an earlier merge of either of its symbols is stale.
            guard alive[left], right >= 0,
                  merges[MergePair(left: ids[left], right: ids[right])]?.rank == candidate.rank
            else { continue }
            ids[left] = candidate.merged
            alive[right] = false
            next[left] = next[right]
            if next[right] >= 0 { previous[next[right]] = left }
            if previous[left] >= 0 { consider(previous[left]) }
            consider(left)
        }
        return ids.indices.filter { alive[$0] }.map { ids[$0] }
    }

    /// A merge waiting in ``bpe(_:)``'s heap: the lowest rank first, then the leftmost.
    private struct PendingMerge: Comparable {
        var rank: Int
        var position: Int
        var merged: Int

        static func < (lhs: PendingMerge, rhs: PendingMerge) -> Bool {
            (lhs.rank, lhs.position) < (rhs.rank, rhs.position)
        }
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
