import Foundation

/// Causal grouped-query attention on OpenBLAS: per head, the scores, the weighted values
/// and (for training) their gradients are matrix products over strided views of the
/// [positions, heads x dimension] activations, so no head is copied out.
struct Attention {
    let heads: Int
    let keyValueHeads: Int
    let dimension: Int

    var queryWidth: Int { heads * dimension }
    var keyValueWidth: Int { keyValueHeads * dimension }
    var group: Int { heads / keyValueHeads }
    var scale: Float { 1 / Float(dimension).squareRoot() }

    /// The attention of `queries` new positions (absolute positions `keys - queries` on)
    /// over all `keys` positions, each query seeing the keys up to its own position.
    /// Returns the context [queries, heads x dimension] and, when asked, each head's
    /// probabilities [queries, keys] for the backward pass.
    func forward(q: [Float], k: [Float], v: [Float], queries: Int, keys: Int, keepProbabilities: Bool) -> (context: [Float], probabilities: [[Float]]) {
        precondition(q.count == queries * queryWidth && k.count >= keys * keyValueWidth && v.count >= keys * keyValueWidth)
        let start = keys - queries
        var context = [Float](repeating: 0, count: queries * queryWidth)
        var kept: [[Float]] = []
        var p = [Float](repeating: 0, count: queries * keys)
        q.withUnsafeBufferPointer { q in
            k.withUnsafeBufferPointer { k in
                v.withUnsafeBufferPointer { v in
                    context.withUnsafeMutableBufferPointer { context in
                        for head in 0..<heads {
                            let kvHead = head / group
                            p.withUnsafeMutableBufferPointer { p in
                                Matrix.multiply(q.baseAddress! + head * dimension, lda: queryWidth, k.baseAddress! + kvHead * dimension, ldb: keyValueWidth, transposingB: true,
                                                into: p.baseAddress!, ldc: keys, m: queries, n: keys, k: dimension, alpha: scale)
                                for query in 0..<queries {
                                    Self.causalSoftmax(p.baseAddress! + query * keys, visible: start + query + 1, width: keys)
                                }
                                Matrix.multiply(p.baseAddress!, lda: keys, v.baseAddress! + kvHead * dimension, ldb: keyValueWidth,
                                                into: context.baseAddress! + head * dimension, ldc: queryWidth, m: queries, n: dimension, k: keys)
                            }
                            if keepProbabilities { kept.append(p) }
                        }
                    }
                }
            }
        }
        return (context, kept)
    }

    /// The gradients of q, k and v (over a whole sequence, `length` positions) from the
    /// context's gradient and the forward pass's probabilities.
    func backward(dContext: [Float], q: [Float], k: [Float], v: [Float], probabilities: [[Float]], length: Int) -> (dQ: [Float], dK: [Float], dV: [Float]) {
        var dQ = [Float](repeating: 0, count: length * queryWidth)
        var dK = [Float](repeating: 0, count: length * keyValueWidth)
        var dV = [Float](repeating: 0, count: length * keyValueWidth)
        var dS = [Float](repeating: 0, count: length * length)
        dContext.withUnsafeBufferPointer { dC in
            q.withUnsafeBufferPointer { q in
                k.withUnsafeBufferPointer { k in
                    v.withUnsafeBufferPointer { v in
                        dQ.withUnsafeMutableBufferPointer { dQ in
                            dK.withUnsafeMutableBufferPointer { dK in
                                dV.withUnsafeMutableBufferPointer { dV in
                                    dS.withUnsafeMutableBufferPointer { dS in
                                        for head in 0..<heads {
                                            let kvHead = head / group
                                            probabilities[head].withUnsafeBufferPointer { p in
                                                // dV += P^T dC; dP = dC V^T.
                                                Matrix.multiply(p.baseAddress!, lda: length, transposingA: true, dC.baseAddress! + head * dimension, ldb: queryWidth,
                                                                into: dV.baseAddress! + kvHead * dimension, ldc: keyValueWidth, m: length, n: dimension, k: length, beta: 1)
                                                Matrix.multiply(dC.baseAddress! + head * dimension, lda: queryWidth, v.baseAddress! + kvHead * dimension, ldb: keyValueWidth, transposingB: true,
                                                                into: dS.baseAddress!, ldc: length, m: length, n: length, k: dimension)
                                                // Through the softmax: dS = P (dP - rowsum(dP P)), times the score scale.
                                                for row in 0..<length {
                                                    let base = row * length
                                                    var weighted: Float = 0
                                                    for column in 0...row { weighted += dS[base + column] * p[base + column] }
                                                    for column in 0...row { dS[base + column] = p[base + column] * (dS[base + column] - weighted) * scale }
                                                    for column in (row + 1)..<length { dS[base + column] = 0 }
                                                }
                                            }
                                            // dQ = dS K; dK += dS^T Q.
                                            Matrix.multiply(dS.baseAddress!, lda: length, k.baseAddress! + kvHead * dimension, ldb: keyValueWidth,
                                                            into: dQ.baseAddress! + head * dimension, ldc: queryWidth, m: length, n: dimension, k: length)
                                            Matrix.multiply(dS.baseAddress!, lda: length, transposingA: true, q.baseAddress! + head * dimension, ldb: queryWidth,
                                                            into: dK.baseAddress! + kvHead * dimension, ldc: keyValueWidth, m: length, n: dimension, k: length, beta: 1)
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

    /// Softmax over the first `visible` of a row's `width` scores; the rest (the future)
    /// become 0.
    private static func causalSoftmax(_ row: UnsafeMutablePointer<Float>, visible: Int, width: Int) {
        var maximum = -Float.infinity
        for index in 0..<visible { maximum = max(maximum, row[index]) }
        var total: Float = 0
        for index in 0..<visible {
            row[index] = Foundation.exp(row[index] - maximum)
            total += row[index]
        }
        let inverse = 1 / total
        for index in 0..<visible { row[index] *= inverse }
        for index in visible..<width { row[index] = 0 }
    }
}
