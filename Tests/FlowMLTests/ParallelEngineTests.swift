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
    func exponential() {
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

    @Test("a product cut into blocks of rows or of columns, for every transpose, equals the product in one piece")
    func splitProducts() {
        let previous = ComputeThreads.count
        defer { ComputeThreads.count = previous }
        var generator = SeededGenerator(seed: 5)
        // Tall (split by rows) and wide (split by columns), each large enough to split.
        for (m, n, k) in [(300, 40, 200), (24, 600, 150)] {
            let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
            let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &generator) }
            let c = (0..<(m * n)).map { _ in Float.random(in: -1...1, using: &generator) }
            for transposingA in [false, true] {
                for transposingB in [false, true] {
                    func product(threads: Int) -> [Float] {
                        ComputeThreads.count = threads
                        var out = c
                        a.withUnsafeBufferPointer { a in
                            b.withUnsafeBufferPointer { b in
                                out.withUnsafeMutableBufferPointer { out in
                                    Matrix.multiply(a.baseAddress!, lda: transposingA ? m : k, transposingA: transposingA, b.baseAddress!, ldb: transposingB ? k : n, transposingB: transposingB,
                                                    into: out.baseAddress!, ldc: n, m: m, n: n, k: k, alpha: 0.5, beta: 1)
                                }
                            }
                        }
                        return out
                    }
                    let whole = product(threads: 1)
                    let split = product(threads: 3)
                    let largest = zip(whole, split).map { abs($0 - $1) / max(1, abs($0)) }.max()!
                    #expect(largest <= 1e-6, "m \(m) n \(n) k \(k), transposing a \(transposingA) b \(transposingB): differs by \(largest)")
                }
            }
        }
    }

    @Test("a long sequence's logits in one pass equal those a KV cache builds chunk by chunk (causal attention across blocks of queries)")
    func blocksAgreeWithCache() throws {
        let ids = sequence(150, seed: 3)
        let whole = try model.logits(ids, adapter: adapter)
        var cache = KVCache(layers: model.configuration.layerCount)
        var pieces: [Float] = []
        for chunk in [0..<70, 70..<87, 87..<88, 88..<150] {
            pieces += try model.forward(Array(ids[chunk]), cache: &cache, adapter: adapter, allPositions: true)
        }
        #expect(pieces.count == whole.count)
        let largest = zip(whole, pieces).map { abs($0 - $1) / max(1, abs($0)) }.max()!
        #expect(largest <= 1e-4, "differs by \(largest)")
    }

    @Test("adapter gradients through a sequence of several attention blocks match central differences")
    func gradientsAcrossBlocks() throws {
        let ids = sequence(150, seed: 8)
        let batch = TrainingBatch(ids: [ids], labels: [ids])
        let (_, gradients) = try model.lossAndGradients(batch, adapter: adapter)
        let epsilon: Float = 1e-2
        for (module, index, isA) in [("model.layers.0.self_attn.q_proj", 3, true), ("model.layers.0.self_attn.v_proj", 7, false), ("model.layers.1.self_attn.q_proj", 20, false)] {
            var up = adapter
            var down = adapter
            if isA { up.a[module]![index] += epsilon; down.a[module]![index] -= epsilon } else { up.b[module]![index] += epsilon; down.b[module]![index] -= epsilon }
            let numeric = (try model.lossAndGradients(batch, adapter: up).loss - model.lossAndGradients(batch, adapter: down).loss) / (2 * epsilon)
            let analytic = isA ? gradients.a[module]![index] : gradients.b[module]![index]
            #expect(abs(numeric - analytic) <= 2e-3 + 0.03 * abs(analytic), "\(module)[\(index)] \(isA ? "A" : "B"): numeric \(numeric), analytic \(analytic)")
        }
    }

    @Test("a batch's loss and gradients are bit for bit the same whether its packs run on one thread or side by side")
    func packsOnThreads() throws {
        let previous = ComputeThreads.count
        defer { ComputeThreads.count = previous }
        // 3 sequences of 120: two packs (240 rows, then 120).
        let sequences = (0..<3).map { sequence(120, seed: 30 + UInt64($0)) }
        let batch = TrainingBatch(ids: sequences, labels: sequences)
        ComputeThreads.count = 1
        let alone = try model.lossAndGradients(batch, adapter: adapter)
        ComputeThreads.count = 2
        let sideBySide = try model.lossAndGradients(batch, adapter: adapter)
        #expect(alone.loss == sideBySide.loss)
        #expect(alone.gradients.a == sideBySide.gradients.a)
        #expect(alone.gradients.b == sideBySide.gradients.b)
    }
}
