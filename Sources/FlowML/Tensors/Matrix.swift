import COpenBLAS

/// Dense row-major products on OpenBLAS: the only place the engine multiplies matrices.
enum Matrix {
    /// `a` [m, k] times the transpose of `b` [n, k]: [m, n]. Weights are stored [out, in],
    /// so a linear layer is `product(x, transposing: weight)`.
    static func product(_ a: [Float], rows m: Int, inner k: Int, transposing b: [Float], rows n: Int) -> [Float] {
        precondition(a.count == m * k && b.count == n * k, "matrix shapes do not match")
        return product(m: m, n: n) { c in
            multiply(a, lda: k, b, ldb: k, transposingB: true, into: c, ldc: n, m: m, n: n, k: k)
        }
    }

    /// `a` [m, k] times `b` [k, n]: [m, n].
    static func product(_ a: [Float], rows m: Int, inner k: Int, by b: [Float], columns n: Int) -> [Float] {
        precondition(a.count == m * k && b.count == k * n, "matrix shapes do not match")
        return product(m: m, n: n) { c in
            multiply(a, lda: k, b, ldb: n, into: c, ldc: n, m: m, n: n, k: k)
        }
    }

    /// A new [m, n] matrix that `fill` writes.
    private static func product(m: Int, n: Int, _ fill: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        c.withUnsafeMutableBufferPointer { fill($0.baseAddress!) }
        return c
    }

    /// `c = alpha op(a) op(b) + beta c` on strided row-major views: `m` x `k` times `k` x
    /// `n` after the optional transposes, each matrix `ld` floats from one row to the next.
    /// Views let one head of a [positions, heads x dimension] matrix take part without a
    /// copy.
    static func multiply(
        _ a: UnsafePointer<Float>, lda: Int, transposingA: Bool = false,
        _ b: UnsafePointer<Float>, ldb: Int, transposingB: Bool = false,
        into c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(
            CblasRowMajor, transposingA ? CblasTrans : CblasNoTrans, transposingB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc)
        )
    }
}
