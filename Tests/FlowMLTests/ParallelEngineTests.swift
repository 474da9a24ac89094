@testable import FlowML
import FlowTesting
import Foundation
import Testing

/// The engine's own parallelism (packs side by side, products cut into blocks) and the
/// work between products (our exponential, causal attention in blocks of queries) must
/// change how fast the engine is, never what it computes.
@Suite("the engine's threads, blocks and vectorised work")
struct ParallelEngineTests {
    let model: LlamaModel
    let adapter: LoRAAdapter

    init() throws {
        model = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-llama"))
        adapter = .random(for: model, targetModules: ["q_proj", "v_proj"], range: -0.3...0.3, seed: 21)
    }

    /// A sequence of `length` token ids of the tiny model's vocabulary.
    private func sequence(_ length: Int, seed: UInt64) -> [Int] {
        var generator = SeededGenerator(seed: seed)
        return (0..<length).map { _ in Int.random(in: 0..<64, using: &generator) }
    }

    @Test("the vectorised exponential is within 2 ulp of the C library's over float's range, and saturates instead of going subnormal or infinite")
    func exponential() async throws {
        try await onOwnThread {
            var worst: Float = 0
            var x: Float = -87.3
            while x < 88.3 {
                let expected = Foundation.exp(Double(x))
                let error = abs(Double(Elementwise.exp(x)) - expected) / expected
                worst = max(worst, Float(error))
                x += 0.0137
            }
            #expect(worst <= 2 * Float.ulpOfOne, "largest relative error \(worst)")
            #expect(Elementwise.exp(0) == 1)
            #expect(Elementwise.exp(-200) >= Float.leastNormalMagnitude && Elementwise.exp(-200) <= 1.00001 * Float.leastNormalMagnitude)
            #expect(Elementwise.exp(200).isFinite && Elementwise.exp(200) > 1e38)
        }
    }

    @Test("a product cut into blocks of rows or of columns, for every transpose, equals the product in one piece")
    func splitProducts() async throws {
        try await onOwnThread {
            var generator = SeededGenerator(seed: 5)
            // Tall (split by rows) and wide (split by columns), each large enough to split.
            for (m, n, k) in [(300, 40, 200), (24, 600, 150)] {
                let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
                let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &generator) }
                let c = (0..<(m * n)).map { _ in Float.random(in: -1...1, using: &generator) }
                let (alpha, beta): (Float, Float) = (0.5, 1)
                // The exact product in double precision, and each element's |alpha|·Σ|a·b| + |beta·c|,
                // the magnitude its rounding error scales with (row-major, untransposed: the
                // transposes below only change how the same numbers are laid out).
                var exact = [Double](repeating: 0, count: m * n)
                var magnitude = [Double](repeating: 0, count: m * n)
                for row in 0..<m {
                    for column in 0..<n {
                        var sum = 0.0
                        var absolute = 0.0
                        for l in 0..<k {
                            let term = Double(a[row * k + l]) * Double(b[l * n + column])
                            sum += term
                            absolute += abs(term)
                        }
                        exact[row * n + column] = Double(alpha) * sum + Double(beta) * Double(c[row * n + column])
                        magnitude[row * n + column] = abs(Double(alpha)) * absolute + abs(Double(beta) * Double(c[row * n + column]))
                    }
                }
                let aTransposed = Self.transpose(a, rows: m, columns: k)
                let bTransposed = Self.transpose(b, rows: k, columns: n)
                for transposingA in [false, true] {
                    for transposingB in [false, true] {
                        func product(threads: Int) -> [Float] {
                            ComputeThreads.withCount(threads) {
                                var out = c
                                (transposingA ? aTransposed : a).withUnsafeBufferPointer { a in
                                    (transposingB ? bTransposed : b).withUnsafeBufferPointer { b in
                                        out.withUnsafeMutableBufferPointer { out in
                                            Matrix.multiply(a.baseAddress!, lda: transposingA ? m : k, transposingA: transposingA, b.baseAddress!, ldb: transposingB ? k : n, transposingB: transposingB,
                                                            into: out.baseAddress!, ldc: n, m: m, n: n, k: k, alpha: alpha, beta: beta)
                                        }
                                    }
                                }
                                return out
                            }
                        }
                        let whole = product(threads: 1)
                        let split = product(threads: 3)
                        // Each is within γ(k+2)·magnitude of the exact value, in whatever order the
                        // kernel sums (it differs between OpenBLAS's kernels), so the two are
                        // within twice that of each other.
                        var worst = (whole: 0.0, split: 0.0, apart: 0.0)
                        for index in exact.indices {
                            let bound = RoundingBound.product(length: k, absoluteSum: magnitude[index])
                            worst.whole = max(worst.whole, abs(Double(whole[index]) - exact[index]) / bound)
                            worst.split = max(worst.split, abs(Double(split[index]) - exact[index]) / bound)
                            worst.apart = max(worst.apart, abs(Double(whole[index]) - Double(split[index])) / (2 * bound))
                        }
                        let shape = "m \(m) n \(n) k \(k), transposing a \(transposingA) b \(transposingB)"
                        #expect(worst.whole <= 1, "\(shape): in one piece, \(worst.whole) of the rounding bound from the exact product")
                        #expect(worst.split <= 1, "\(shape): in blocks, \(worst.split) of the rounding bound from the exact product")
                        #expect(worst.apart <= 1, "\(shape): the two differ by \(worst.apart) of twice the rounding bound")
                    }
                }
            }
        }
    }

    /// `matrix` [rows, columns] stored as its transpose [columns, rows].
    private static func transpose(_ matrix: [Float], rows: Int, columns: Int) -> [Float] {
        var transposed = [Float](repeating: 0, count: matrix.count)
        for row in 0..<rows {
            for column in 0..<columns { transposed[column * rows + row] = matrix[row * columns + column] }
        }
        return transposed
    }

    @Test("a long sequence's logits in one pass equal those a KV cache builds chunk by chunk (causal attention across blocks of queries)")
    func blocksAgreeWithCache() async throws {
        try await onOwnThread {
            let ids = sequence(150, seed: 3)
            let whole = try model.logits(ids, adapter: adapter)
            var cache = KVCache(layers: model.configuration.layerCount)
            var pieces: [Float] = []
            for chunk in [0..<70, 70..<87, 87..<88, 88..<150] {
                pieces += try model.forward(Array(ids[chunk]), cache: &cache, adapter: adapter, allPositions: true)
            }
            #expect(pieces.count == whole.count)
            // Two orders of the same sums, each within the forward pass's rounding bound.
            let bound = 2 * RoundingBound.forwardPass(model.configuration, positions: ids.count, adapterRank: adapter.rank)
            let largest = RoundingBound.largestScaledDifference(pieces, whole)
            #expect(largest <= bound, "differs by \(largest), bound \(bound)")
        }
    }

    @Test("adapter gradients through a sequence of several attention blocks match central differences")
    func gradientsAcrossBlocks() async throws {
        try await onOwnThread {
            let ids = sequence(150, seed: 8)
            try GradientCheck.expectMatchesCentralDifferences(model, TrainingBatch(ids: [ids], labels: [ids]), adapter: adapter)
        }
    }

    @Test("with a completion-only loss (the prompt's positions masked), only the labelled positions go through the LM head, and the gradients still match central differences")
    func maskedGradients() async throws {
        try await onOwnThread {
            let ids = sequence(90, seed: 12)
            // The first 60 positions are the prompt, as an assistant mask leaves them.
            let labels = ids.enumerated().map { $0.offset < 60 ? TrainingBatch.ignoredLabel : $0.element }
            try GradientCheck.expectMatchesCentralDifferences(model, TrainingBatch(ids: [ids], labels: [labels]), adapter: adapter)
            let (masked, _) = try model.lossAndGradients(TrainingBatch(ids: [ids], labels: [labels]), adapter: adapter)
            let (whole, _) = try model.lossAndGradients(TrainingBatch(ids: [ids], labels: [ids]), adapter: adapter)
            #expect(masked != whole, "the mask changes the loss: it is over 30 positions, not 90")
        }
    }

    @Test("a batch's loss and gradients are bit for bit the same whether its packs run on one thread or side by side")
    func packsOnThreads() async throws {
        try await onOwnThread {
            // 3 sequences of 120: two packs (240 rows, then 120).
            let sequences = (0..<3).map { sequence(120, seed: 30 + UInt64($0)) }
            let batch = TrainingBatch(ids: sequences, labels: sequences)
            let alone = try ComputeThreads.withCount(1) { try model.lossAndGradients(batch, adapter: adapter) }
            let sideBySide = try ComputeThreads.withCount(2) { try model.lossAndGradients(batch, adapter: adapter) }
            #expect(alone.loss == sideBySide.loss)
            #expect(alone.gradients.a == sideBySide.gradients.a)
            #expect(alone.gradients.b == sideBySide.gradients.b)
        }
    }
}
