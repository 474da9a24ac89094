import Foundation

/// Causal grouped-query attention on OpenBLAS: per head, the scores, the weighted values
/// and (for training) their gradients are matrix products over strided views of the
/// [positions, heads x dimension] activations, so no head is copied out. Training packs
/// the sequences of a batch one after another in the same rows; each attends only
/// within itself.
struct Attention {
    let heads: Int
    let keyValueHeads: Int
    let dimension: Int

    var queryWidth: Int { heads * dimension }
    var keyValueWidth: Int { keyValueHeads * dimension }
    var group: Int { heads / keyValueHeads }
    var scale: Float { 1 / Float(dimension).squareRoot() }

    /// Which rows attend to which: rows `queries` of q attend to rows `keys` of k and v.
    /// The queries are the last positions of the keys' sequence (all of them in training,
    /// the new ones after a cache), and each sees the keys up to its own position.
    struct Span {
        var queries: Range<Int>
        var keys: Range<Int>
    }

    /// The attention of `queries` new positions over all `keys` positions of one sequence
    /// (a KV cache's): the context [queries, heads x dimension].
    func forward(q: [Float], k: [Float], v: [Float], queries: Int, keys: Int) -> [Float] {
        forward(q: q, k: k, v: v, spans: [Span(queries: 0..<queries, keys: 0..<keys)]).context
    }

    /// Attention within each span, and the probabilities the backward pass needs,
    /// [span][head][queries x keys]. Past the keys its block of queries sees, a row is
    /// left unset: nothing reads there.
    func forward(q: [Float], k: [Float], v: [Float], spans: [Span]) -> (context: [Float], probabilities: [[[Float]]]) {
        let rows = spans.map(\.queries.upperBound).max() ?? 0
        precondition(q.count >= rows * queryWidth && spans.allSatisfy { k.count >= $0.keys.upperBound * keyValueWidth && v.count >= $0.keys.upperBound * keyValueWidth })
        var context = [Float](repeating: 0, count: rows * queryWidth)
        var probabilities: [[[Float]]] = []
        q.withUnsafeBufferPointer { q in
            k.withUnsafeBufferPointer { k in
                v.withUnsafeBufferPointer { v in
                    context.withUnsafeMutableBufferPointer { context in
                        for span in spans {
                            let (queryStart, keyStart) = (span.queries.lowerBound, span.keys.lowerBound)
                            var perHead: [[Float]] = []
                            for head in 0..<heads {
                                perHead.append([Float].filled(count: span.queries.count * span.keys.count) { p in
                                    forward(head: head, q: q.baseAddress! + queryStart * queryWidth, k: k.baseAddress! + keyStart * keyValueWidth, v: v.baseAddress! + keyStart * keyValueWidth,
                                            context: context.baseAddress! + queryStart * queryWidth, probabilities: p, queries: span.queries.count, keys: span.keys.count)
                                })
                            }
                            probabilities.append(perHead)
                        }
                    }
                }
            }
        }
        return (context, probabilities)
    }

    /// The gradients of the packed q, k and v from the context's gradient and the forward
    /// pass's probabilities.
    func backward(dContext: [Float], q: [Float], k: [Float], v: [Float], probabilities: [[[Float]]], sequences: [Range<Int>]) -> (dQ: [Float], dK: [Float], dV: [Float]) {
        let rows = sequences.last?.upperBound ?? 0
        // Every block of every head writes its own part of dQ; dK and dV sum over blocks.
        var dQ = [Float](unsetCount: rows * queryWidth)
        var dK = [Float](repeating: 0, count: rows * keyValueWidth)
        var dV = [Float](repeating: 0, count: rows * keyValueWidth)
        let longest = sequences.map(\.count).max() ?? 0
        var dS = [Float](unsetCount: min(longest, Self.queryBlock) * longest)
        dContext.withUnsafeBufferPointer { dC in
            q.withUnsafeBufferPointer { q in
                k.withUnsafeBufferPointer { k in
                    v.withUnsafeBufferPointer { v in
                        dQ.withUnsafeMutableBufferPointer { dQ in
                            dK.withUnsafeMutableBufferPointer { dK in
                                dV.withUnsafeMutableBufferPointer { dV in
                                    dS.withUnsafeMutableBufferPointer { dS in
                                        for (index, sequence) in sequences.enumerated() {
                                            let start = sequence.lowerBound
                                            for head in 0..<heads {
                                                probabilities[index][head].withUnsafeBufferPointer { p in
                                                    backward(
                                                        head: head, length: sequence.count, p: p.baseAddress!, dS: dS.baseAddress!,
                                                        dC: dC.baseAddress! + start * queryWidth, q: q.baseAddress! + start * queryWidth,
                                                        k: k.baseAddress! + start * keyValueWidth, v: v.baseAddress! + start * keyValueWidth,
                                                        dQ: dQ.baseAddress! + start * queryWidth, dK: dK.baseAddress! + start * keyValueWidth, dV: dV.baseAddress! + start * keyValueWidth
                                                    )
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dQ, dK, dV)
    }

    /// Queries per block of the causal products: a block multiplies only the keys its last
    /// query sees, which skips most of the masked half of the scores (three eighths of the
    /// products at 256 positions) while keeping each product large enough to run fast.
    static let queryBlock = 64

    /// One head: probabilities = causal softmax(scale Q K^T), context = probabilities V.
    private func forward(head: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, context: UnsafeMutablePointer<Float>, probabilities p: UnsafeMutablePointer<Float>, queries: Int, keys: Int) {
        let kvHead = head / group
        let start = keys - queries
        for blockStart in stride(from: 0, to: queries, by: Self.queryBlock) {
            let blockEnd = min(queries, blockStart + Self.queryBlock)
            let seen = start + blockEnd
            let scores = p + blockStart * keys
            Matrix.multiply(q + blockStart * queryWidth + head * dimension, lda: queryWidth, k + kvHead * dimension, ldb: keyValueWidth, transposingB: true,
                            into: scores, ldc: keys, m: blockEnd - blockStart, n: seen, k: dimension, alpha: scale)
            for query in blockStart..<blockEnd {
                Self.causalSoftmax(p + query * keys, visible: start + query + 1, width: seen)
            }
            Matrix.multiply(scores, lda: keys, v + kvHead * dimension, ldb: keyValueWidth,
                            into: context + blockStart * queryWidth + head * dimension, ldc: queryWidth, m: blockEnd - blockStart, n: dimension, k: seen)
        }
    }

    /// One head of one sequence, backward, a block of queries at a time: dV += P^T dC;
    /// dP = dC V^T; dS = P (dP - rowsum(dP P)) scale; dQ = dS K; dK += dS^T Q. `dS` holds
    /// one block's rows, `length` wide.
    private func backward(
        head: Int, length: Int, p: UnsafePointer<Float>, dS: UnsafeMutablePointer<Float>,
        dC: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>
    ) {
        let kvHead = head / group
        for blockStart in stride(from: 0, to: length, by: Self.queryBlock) {
            let blockEnd = min(length, blockStart + Self.queryBlock)
            let rows = blockEnd - blockStart
            let seen = blockEnd
            let probabilities = p + blockStart * length
            let dContext = dC + blockStart * queryWidth + head * dimension
            Matrix.multiply(probabilities, lda: length, transposingA: true, dContext, ldb: queryWidth,
                            into: dV + kvHead * dimension, ldc: keyValueWidth, m: seen, n: dimension, k: rows, beta: 1)
            Matrix.multiply(dContext, lda: queryWidth, v + kvHead * dimension, ldb: keyValueWidth, transposingB: true,
                            into: dS, ldc: length, m: rows, n: seen, k: dimension)
            for row in 0..<rows {
                let visible = blockStart + row + 1
                Elementwise.softmaxBackward(dS + row * length, probabilities: probabilities + row * length, count: visible, scale: scale)
                (dS + row * length + visible).update(repeating: 0, count: seen - visible)
            }
            Matrix.multiply(dS, lda: length, k + kvHead * dimension, ldb: keyValueWidth,
                            into: dQ + blockStart * queryWidth + head * dimension, ldc: queryWidth, m: rows, n: dimension, k: seen)
            Matrix.multiply(dS, lda: length, transposingA: true, q + blockStart * queryWidth + head * dimension, ldb: queryWidth,
                            into: dK + kvHead * dimension, ldc: keyValueWidth, m: seen, n: dimension, k: rows, beta: 1)
        }
    }

    /// Softmax over the first `visible` of a row's `width` scores; the rest (the future)
    /// become 0.
    private static func causalSoftmax(_ row: UnsafeMutablePointer<Float>, visible: Int, width: Int) {
        let maximum = Elementwise.maximum(row, count: visible)
        let total = Elementwise.exponentiate(row, count: visible, subtracting: maximum)
        Elementwise.scale(row, count: visible, by: 1 / total)
        (row + visible).update(repeating: 0, count: width - visible)
    }
}
