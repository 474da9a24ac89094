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
        [Float].filled(count: m * n, fill)
    }

    /// `c = alpha op(a) op(b) + beta c` on strided row-major views: `m` x `k` times `k` x
    /// `n` after the optional transposes, each matrix `ld` floats from one row to the next.
    /// Views let one head of a [positions, heads x dimension] matrix take part without a
    /// copy. A large product is cut into blocks of rows or of columns of `c`, one per
    /// engine thread (``ComputeThreads``); every element is still the same single sum over
    /// `k`.
    static func multiply(
        _ a: UnsafePointer<Float>, lda: Int, transposingA: Bool = false,
        _ b: UnsafePointer<Float>, ldb: Int, transposingB: Bool = false,
        into c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        ComputeThreads.singleThreadedOpenBLAS()
        let lanes = ComputeThreads.lanes(forWork: m * n * k, minimumPerLane: minimumWorkPerLane)
        // Along the longer side: each block then packs only its share of the larger operand
        // (a weight matrix, usually) instead of all of it.
        let splitsRows = m >= n
        let extent = splitsRows ? m : n
        guard lanes > 1, extent >= lanes else {
            sgemm(a, lda: lda, transposingA: transposingA, b, ldb: ldb, transposingB: transposingB, into: c, ldc: ldc, m: m, n: n, k: k, alpha: alpha, beta: beta)
            return
        }
        let views = Views(a: a, b: b, c: c)
        ComputeThreads.forEach(lanes, lanes: lanes) { lane in
            let block = (extent * lane / lanes)..<(extent * (lane + 1) / lanes)
            if splitsRows {
                // Rows of op(a): rows of a, or columns of a when it is transposed.
                let a = views.a + (transposingA ? block.lowerBound : block.lowerBound * lda)
                sgemm(a, lda: lda, transposingA: transposingA, views.b, ldb: ldb, transposingB: transposingB,
                      into: views.c + block.lowerBound * ldc, ldc: ldc, m: block.count, n: n, k: k, alpha: alpha, beta: beta)
            } else {
                // Columns of op(b): rows of b when it is transposed, else its columns.
                let b = views.b + (transposingB ? block.lowerBound * ldb : block.lowerBound)
                sgemm(views.a, lda: lda, transposingA: transposingA, b, ldb: ldb, transposingB: transposingB,
                      into: views.c + block.lowerBound, ldc: ldc, m: m, n: block.count, k: k, alpha: alpha, beta: beta)
            }
        }
    }

    /// Multiply-adds below which handing a block to another thread costs more than it saves.
    private static let minimumWorkPerLane = 1 << 20

    /// The operands of one split product; each block writes only its own part of `c`.
    private struct Views: @unchecked Sendable {
        let a: UnsafePointer<Float>
        let b: UnsafePointer<Float>
        let c: UnsafeMutablePointer<Float>
    }

    private static func sgemm(
        _ a: UnsafePointer<Float>, lda: Int, transposingA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transposingB: Bool,
        into c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int, alpha: Float, beta: Float
    ) {
        cblas_sgemm(
            CblasRowMajor, transposingA ? CblasTrans : CblasNoTrans, transposingB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc)
        )
    }
}
