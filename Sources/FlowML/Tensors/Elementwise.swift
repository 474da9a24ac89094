/// The work between the products: exponentials for the softmaxes and the SwiGLU
/// activation, sums, scaling. Plain loops over raw buffers, with no bounds or uniqueness
/// checks and no calls inside, which the compiler turns into vector code; sums keep eight
/// lanes. On the engine's 256-row packs this work had taken as long as a third of the
/// products.
enum Elementwise {
    /// `e^x`, within 2 ulp of `expf` over float's range (Cephes' `expf`: Cody-Waite range
    /// reduction and a degree-6 polynomial), with no call and no branch, so that a loop
    /// over it vectorises. Arguments below -87.34 give 2^-126 instead of a subnormal, and
    /// above 88.37 give 2^127 instead of infinity; softmax and sigmoid never tell the
    /// difference.
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let x = Swift.min(Swift.max(x, -87.33654), 88.3762626647949)
        // Adding 1.5 * 2^23 rounds x / ln 2 to the nearest integer n and leaves n in the low
        // bits of the sum's mantissa.
        let shifted = x * 1.44269504088896341 + 12582912
        let n = shifted - 12582912
        let r = x - n * 0.693359375 + n * 2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        let exponent = (Int32(bitPattern: shifted.bitPattern) &- 0x4B40_0000 &+ 127) &<< 23
        return p * Float(bitPattern: UInt32(bitPattern: exponent))
    }

    /// The largest of `count` values.
    static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        // Eight running maxima, so the comparisons do not wait on one another.
        var best = SIMD8<Float>(repeating: -.infinity)
        var index = 0
        while index + 8 <= count {
            for lane in 0..<8 { best[lane] = Swift.max(best[lane], x[index + lane]) }
            index += 8
        }
        while index < count {
            best[0] = Swift.max(best[0], x[index])
            index += 1
        }
        return best.max()
    }

    /// The sum of `count` values.
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var total = SIMD8<Float>()
        var index = 0
        while index + 8 <= count {
            total += UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self)
            index += 8
        }
        var rest: Float = 0
        while index < count {
            rest += x[index]
            index += 1
        }
        return total.sum() + rest
    }

    /// The dot product of `count` values.
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var total = SIMD8<Float>()
        var index = 0
        while index + 8 <= count {
            total += UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(y + index).loadUnaligned(as: SIMD8<Float>.self)
            index += 8
        }
        var rest: Float = 0
        while index < count {
            rest += x[index] * y[index]
            index += 1
        }
        return total.sum() + rest
    }

    /// Replaces each of `count` values with `e^(x - shift)` and returns their sum.
    static func exponentiate(_ x: UnsafeMutablePointer<Float>, count: Int, subtracting shift: Float) -> Float {
        for index in 0..<count { x[index] = exp(x[index] - shift) }
        return sum(x, count: count)
    }

    /// `x *= factor`.
    static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float) {
        for index in 0..<count { x[index] *= factor }
    }

    /// `x += factor * y`.
    static func add(_ y: UnsafePointer<Float>, scaledBy factor: Float = 1, to x: UnsafeMutablePointer<Float>, count: Int) {
        for index in 0..<count { x[index] += factor * y[index] }
    }

    /// `x *= y`, value by value.
    static func multiply(_ x: UnsafeMutablePointer<Float>, by y: UnsafePointer<Float>, count: Int) {
        for index in 0..<count { x[index] *= y[index] }
    }

    /// SwiGLU: `silu(gate) * up`, with `silu(g) = g / (1 + e^-g)`.
    static func swiGLU(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        for index in 0..<count {
            let g = gate[index]
            out[index] = g * up[index] / (1 + exp(-g))
        }
    }

    /// SwiGLU's gradients from its output's: with `s = sigmoid(g)`, `dUp = d g s` and
    /// `dGate = d up s (1 + g (1 - s))`.
    static func swiGLUBackward(
        _ d: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int
    ) {
        for index in 0..<count {
            let g = gate[index]
            let s = 1 / (1 + exp(-g))
            dUp[index] = d[index] * g * s
            dGate[index] = d[index] * up[index] * s * (1 + g * (1 - s))
        }
    }

    /// Softmax's backward pass over one row, in place: with `p` the probabilities and `d`
    /// their gradient, `d = scale p (d - sum(d p))`.
    static func softmaxBackward(_ d: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, count: Int, scale: Float) {
        let weighted = dot(d, p, count: count)
        for index in 0..<count { d[index] = scale * p[index] * (d[index] - weighted) }
    }
}

extension Array where Element == Float {
    /// `count` floats left unset, for a buffer whose every element is written before it is
    /// read.
    init(unsetCount count: Int) {
        self.init(unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// `count` floats that `fill` must write in full before anything reads them: no zeroing
    /// pass first.
    static func filled(count: Int, _ fill: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { fill(buffer.baseAddress!) }
            initialized = count
        }
    }

    /// `self *= other`, value by value.
    mutating func multiply(by other: [Float]) {
        precondition(count == other.count, "multiplying arrays of different lengths")
        let count = self.count
        withUnsafeMutableBufferPointer { x in
            other.withUnsafeBufferPointer { y in
                guard count > 0 else { return }
                Elementwise.multiply(x.baseAddress!, by: y.baseAddress!, count: count)
            }
        }
    }

    /// `self += factor * other`, value by value.
    mutating func add(_ other: [Float], scaledBy factor: Float = 1) {
        precondition(count == other.count, "adding arrays of different lengths")
        let count = self.count
        withUnsafeMutableBufferPointer { x in
            other.withUnsafeBufferPointer { y in
                guard count > 0 else { return }
                Elementwise.add(y.baseAddress!, scaledBy: factor, to: x.baseAddress!, count: count)
            }
        }
    }
}
