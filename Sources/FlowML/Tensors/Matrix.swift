import COpenBLAS

/// Dense row-major products on OpenBLAS: the only place the engine multiplies matrices.
enum Matrix {
    /// `a` [m, k] times the transpose of `b` [n, k]: [m, n]. Weights are stored [out, in],
    /// so a linear layer is `product(x, transposing: weight)`.
    static func product(_ a: [Float], rows m: Int, inner k: Int, transposing b: [Float], rows n: Int) -> [Float] {
        precondition(a.count == m * k && b.count == n * k, "matrix shapes do not match")
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a.baseAddress, Int32(k), b.baseAddress, Int32(k), 0, c.baseAddress, Int32(n))
                }
            }
        }
        return c
    }

    /// `a` [m, k] times `b` [k, n]: [m, n].
    static func product(_ a: [Float], rows m: Int, inner k: Int, by b: [Float], columns n: Int) -> [Float] {
        precondition(a.count == m * k && b.count == k * n, "matrix shapes do not match")
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a.baseAddress, Int32(k), b.baseAddress, Int32(n), 0, c.baseAddress, Int32(n))
                }
            }
        }
        return c
    }
}
