import FlowML

/// Constrained decoding: the model may pick only tokens that keep its output a prefix of
/// JSON of the requested shape (``JSONMatcher``), and the output ends as soon as the JSON
/// is whole. So even a model that knows no JSON (the random demo model) answers with JSON
/// that follows the schema, which is what structured outputs promise.
///
/// When the token budget runs short, the decoder writes the shortest closing itself, a
/// token at a time: an answer cut by `max_tokens` is still whole JSON. It switches to that
/// with room to spare: the closing as it stands plus the most one token can add to it (the
/// whole shape's shortest value).
final class JSONConstraint: TokenConstraint {
    private var matcher: JSONMatcher
    private let vocabulary: [[UInt8]?]
    /// The token ids by their first byte: a step tries the 256 bytes first, then only the
    /// tokens that begin with one the JSON may go on with.
    private let byFirstByte: [[Int]]
    private let margin: Int

    init(shape: JSONShape, vocabulary: [[UInt8]?]) {
        matcher = JSONMatcher(shape)
        self.vocabulary = vocabulary
        var byFirstByte = [[Int]](repeating: [], count: 256)
        for (id, bytes) in vocabulary.enumerated() {
            if let first = bytes?.first { byFirstByte[Int(first)].append(id) }
        }
        self.byFirstByte = byFirstByte
        margin = matcher.closingBytes().count + 16
    }

    var isFinished: Bool { matcher.isComplete }

    func accept(_ token: Int) {
        _ = matcher.feed(vocabulary[safe: token].flatMap { $0 } ?? [])
    }

    func mask(_ logits: inout [Float], remaining: Int) {
        let closing = matcher.closingBytes()
        if remaining <= closing.count + margin {
            force(&logits, along: closing)
            return
        }
        var keep = [Bool](repeating: false, count: logits.count)
        var allowed = false
        for first in 0..<256 {
            var afterFirst = matcher
            guard afterFirst.feed(UInt8(first)) else { continue }
            for id in byFirstByte[first] where id < logits.count && logits[id] > -.infinity {
                let bytes = vocabulary[id]!
                var trial = afterFirst
                if bytes.count == 1 || trial.feed(Array(bytes.dropFirst())) {
                    keep[id] = true
                    allowed = true
                }
            }
        }
        for id in logits.indices where !keep[id] { logits[id] = -.infinity }
        if !allowed { force(&logits, along: closing) }
    }

    /// Leaves one token: the longest whose bytes begin the closing.
    private func force(_ logits: inout [Float], along closing: [UInt8]) {
        var best: (id: Int, length: Int)?
        for id in logits.indices {
            guard let bytes = vocabulary[safe: id].flatMap({ $0 }), !bytes.isEmpty, bytes.count <= closing.count, closing.starts(with: bytes) else { continue }
            if bytes.count > best?.length ?? 0 { best = (id, bytes.count) }
        }
        // (A vocabulary with no token for the closing's first byte has no way to close:
        // the model picks as it would, and `max_tokens` ends the answer.)
        guard let best else { return }
        for id in logits.indices where id != best.id { logits[id] = -.infinity }
        logits[best.id] = 0
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
