/// The work between the products, on SIMD lanes: exponentials for the softmaxes and the
/// SwiGLU activation, sums, scaling. Written over raw buffers, with no bounds or
/// uniqueness checks inside the loops, because on the engine's 256-row packs this work
/// took as long as a third of the products.
enum Elementwise {
    typealias Lane = SIMD8<Float>

    /// `e^x` per lane, within 2 ulp of `expf` over float's range (Cephes' `expf`: Cody-Waite
    /// range reduction and a degree-6 polynomial). Arguments below -87.3 give 2^-126
    /// instead of a subnormal, and above 88.37 give 2^127 instead of infinity; softmax and
    /// sigmoid never tell the difference.
    @inline(__always)
    static func exp(_ x: Lane) -> Lane {
        let x = x.clamped(lowerBound: Lane(repeating: -87.3365478515625), upperBound: Lane(repeating: 88.3762626647949))
        // Adding 1.5 * 2^23 rounds x / ln 2 to the nearest integer n and leaves n in the low
        // bits of the sum's mantissa.
        let shifted = x * 1.44269504088896341 + 12582912
        let n = shifted - 12582912
        let r = x - n * 0.693359375 + n * 2.12194440e-4
        var p = Lane(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        let exponent = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        return p * unsafeBitCast(exponent, to: Lane.self)
    }

    /// Runs `body` over `count` floats a lane at a time; the last, partial lane is padded
    /// with `padding` and only its first values are written back.
    @inline(__always)
    private static func forEachLane(_ count: Int, _ body: (Int, Int) -> Void) {
        var index = 0
        while index + Lane.scalarCount <= count {
            body(index, Lane.scalarCount)
            index += Lane.scalarCount
        }
        if index < count { body(index, count - index) }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>, _ index: Int, _ valid: Int, padding: Float = 0) -> Lane {
        if valid == Lane.scalarCount { return UnsafeRawPointer(p + index).loadUnaligned(as: Lane.self) }
        var lane = Lane(repeating: padding)
        for i in 0..<valid { lane[i] = p[index + i] }
        return lane
    }

    @inline(__always)
    private static func store(_ lane: Lane, _ p: UnsafeMutablePointer<Float>, _ index: Int, _ valid: Int) {
        if valid == Lane.scalarCount {
            UnsafeMutableRawPointer(p + index).storeBytes(of: lane, as: Lane.self)
        } else {
            for i in 0..<valid { p[index + i] = lane[i] }
        }
    }

    /// The largest of `count` values.
    static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var best = Lane(repeating: -.infinity)
        forEachLane(count) { index, valid in best = pointwiseMax(best, load(x, index, valid, padding: -.infinity)) }
        return best.max()
    }

    /// Replaces each of `count` values with `e^(x - shift)` and returns their sum.
    static func exponentiate(_ x: UnsafeMutablePointer<Float>, count: Int, subtracting shift: Float) -> Float {
        var total = Lane()
        forEachLane(count) { index, valid in
            var e = exp(load(x, index, valid) - shift)
            if valid < Lane.scalarCount { for i in valid..<Lane.scalarCount { e[i] = 0 } }
            total += e
            store(e, x, index, valid)
        }
        return total.sum()
    }

    /// `x *= factor`.
    static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float) {
        forEachLane(count) { index, valid in store(load(x, index, valid) * factor, x, index, valid) }
    }

    /// `x += factor * y`.
    static func add(_ y: UnsafePointer<Float>, scaledBy factor: Float = 1, to x: UnsafeMutablePointer<Float>, count: Int) {
        forEachLane(count) { index, valid in store(load(x, index, valid) + factor * load(y, index, valid), x, index, valid) }
    }

    /// `x *= y`, value by value.
    static func multiply(_ x: UnsafeMutablePointer<Float>, by y: UnsafePointer<Float>, count: Int) {
        forEachLane(count) { index, valid in store(load(x, index, valid) * load(y, index, valid), x, index, valid) }
    }

    /// SwiGLU: `silu(gate) * up`, with `silu(g) = g / (1 + e^-g)`.
    static func swiGLU(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        forEachLane(count) { index, valid in
            let g = load(gate, index, valid)
            store(g * load(up, index, valid) / (1 + exp(-g)), out, index, valid)
        }
    }

    /// SwiGLU's gradients from its output's: with `s = sigmoid(g)`, `dUp = d g s` and
    /// `dGate = d up s (1 + g (1 - s))`.
    static func swiGLUBackward(
        _ d: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int
    ) {
        forEachLane(count) { index, valid in
            let g = load(gate, index, valid)
            let dOut = load(d, index, valid)
            let s = 1 / (1 + exp(-g))
            store(dOut * g * s, dUp, index, valid)
            store(dOut * load(up, index, valid) * s * (1 + g * (1 - s)), dGate, index, valid)
        }
    }

    /// Softmax's backward pass over one row, in place: with `p` the probabilities and `d`
    /// their gradient, `d = scale p (d - sum(d p))`.
    static func softmaxBackward(_ d: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, count: Int, scale: Float) {
        let weighted = dot(d, p, count: count)
        forEachLane(count) { index, valid in
            store(scale * load(p, index, valid) * (load(d, index, valid) - weighted), d, index, valid)
        }
    }

    /// The dot product of `count` values.
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var total = Lane()
        forEachLane(count) { index, valid in total += load(x, index, valid) * load(y, index, valid) }
        return total.sum()
    }
}

extension Array where Element == Float {
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
