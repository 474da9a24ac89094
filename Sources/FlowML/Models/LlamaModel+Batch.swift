import Foundation

/// Decoding several sequences at once: each step, one new token of every sequence goes
/// through the model together. The base model's matrix products run once for all of them,
/// so its weights are read once a step rather than once per sequence, which is what a
/// decoding step's time goes to; each sequence's adapter adds its own low-rank delta to its
/// row, and attention runs per sequence over its own cache. `flow ml serve` batches the
/// requests it has in hand this way (`GenerationQueue`).
extension LlamaModel {
    /// Runs `prompt` through the model into a new cache: the start of a sequence. Returns
    /// the cache and the logits of the prompt's last position.
    public func prefill(_ prompt: [Int], adapter: LoRAAdapter?) throws -> (KVCache, [Float]) {
        var cache = KVCache(layers: configuration.layerCount)
        let logits = try forward(prompt, cache: &cache, adapter: adapter, allPositions: false)
        return (cache, logits)
    }

    /// One decoding step of several sequences: `tokens[i]` goes after the positions
    /// `caches[i]` holds, over `adapters[i]`. Returns each sequence's next logits, and
    /// extends each cache by one position. The same as ``forward`` of each token on its own,
    /// to the rounding of a product's summation order.
    public func decodeStep(_ tokens: [Int], caches: inout [KVCache], adapters: [LoRAAdapter?]) throws -> [[Float]] {
        let rows = tokens.count
        precondition(caches.count == rows && adapters.count == rows, "one cache and one adapter (or nil) per token")
        guard rows > 0 else { return [] }
        let c = configuration
        let hidden = c.hiddenSize
        let dimension = c.headDimension
        var x = try embed(tokens)
        // Each row's rotation is its own position's.
        let longest = caches.map(\.length).max()! + 1
        let (allCos, allSin) = rotaryTables(length: longest)
        var cos: [Float] = []
        var sin: [Float] = []
        for cache in caches {
            cos += allCos[(cache.length * dimension)..<((cache.length + 1) * dimension)]
            sin += allSin[(cache.length * dimension)..<((cache.length + 1) * dimension)]
        }
        let attention = Attention(heads: c.headCount, keyValueHeads: c.keyValueHeadCount, dimension: dimension)
        let queryWidth = c.headCount * dimension
        let kvWidth = c.keyValueHeadCount * dimension
        for layer in 0..<c.layerCount {
            let prefix = "model.layers.\(layer)."
            let normed = rmsNorm(x, weight: weights[prefix + "input_layernorm.weight"]!, rows: rows)
            var q = linear(normed, rows: rows, module: prefix + "self_attn.q_proj", outputs: queryWidth, adapters: adapters)
            var k = linear(normed, rows: rows, module: prefix + "self_attn.k_proj", outputs: kvWidth, adapters: adapters)
            let v = linear(normed, rows: rows, module: prefix + "self_attn.v_proj", outputs: kvWidth, adapters: adapters)
            q = rotate(q, heads: c.headCount, length: rows, cos: cos, sin: sin, inverse: false)
            k = rotate(k, heads: c.keyValueHeadCount, length: rows, cos: cos, sin: sin, inverse: false)
            var context: [Float] = []
            context.reserveCapacity(rows * queryWidth)
            for row in 0..<rows {
                caches[row].keys[layer] += k[(row * kvWidth)..<((row + 1) * kvWidth)]
                caches[row].values[layer] += v[(row * kvWidth)..<((row + 1) * kvWidth)]
                context += attention.forward(
                    q: Array(q[(row * queryWidth)..<((row + 1) * queryWidth)]), k: caches[row].keys[layer], v: caches[row].values[layer],
                    queries: 1, keys: caches[row].length + 1
                )
            }
            x.add(linear(context, rows: rows, module: prefix + "self_attn.o_proj", outputs: hidden, adapters: adapters))
            let normed2 = rmsNorm(x, weight: weights[prefix + "post_attention_layernorm.weight"]!, rows: rows)
            let gate = linear(normed2, rows: rows, module: prefix + "mlp.gate_proj", outputs: c.intermediateSize, adapters: adapters)
            let up = linear(normed2, rows: rows, module: prefix + "mlp.up_proj", outputs: c.intermediateSize, adapters: adapters)
            x.add(linear(swiGLU(gate: gate, up: up), rows: rows, module: prefix + "mlp.down_proj", outputs: hidden, adapters: adapters))
        }
        for row in 0..<rows { caches[row].length += 1 }
        let final = rmsNorm(x, weight: weights["model.norm.weight"]!, rows: rows)
        let logits = weights.product(final, rows: rows, name: headName, outputs: c.vocabularySize)!
        return (0..<rows).map { Array(logits[($0 * c.vocabularySize)..<(($0 + 1) * c.vocabularySize)]) }
    }

    /// `x W^T (+ b)` for every row at once, then each row's adapter delta `s (x A^T) B^T`.
    private func linear(_ x: [Float], rows: Int, module: String, outputs: Int, adapters: [LoRAAdapter?]) -> [Float] {
        var y = forwardLinear(x, rows: rows, module: module, outputs: outputs, adapter: nil).0
        let inputs = x.count / rows
        for (row, adapter) in adapters.enumerated() {
            guard let adapter, let a = adapter.a[module], let b = adapter.b[module] else { continue }
            let down = Matrix.product(Array(x[(row * inputs)..<((row + 1) * inputs)]), rows: 1, inner: inputs, transposing: a, rows: adapter.rank)
            down.withUnsafeBufferPointer { down in
                b.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { y in
                        Matrix.multiply(down.baseAddress!, lda: adapter.rank, b.baseAddress!, ldb: adapter.rank, transposingB: true,
                                        into: y.baseAddress! + row * outputs, ldc: outputs, m: 1, n: outputs, k: adapter.rank, alpha: adapter.scaling, beta: 1)
                    }
                }
            }
        }
        return y
    }
}

/// Picks a sequence's tokens as ``LlamaModel/generate(prompt:settings:adapter:constraint:onToken:)``
/// does, one logits row at a time: for decoding that is not one loop per sequence.
public struct TokenPicker: Sendable {
    public let settings: GenerationSettings
    private var generator: SeededGenerator

    public init(_ settings: GenerationSettings) throws {
        guard settings.maximumNewTokens >= 0 else { throw ModelError("max_new_tokens must not be negative, got \(settings.maximumNewTokens)") }
        guard settings.temperature >= 0, settings.temperature.isFinite else { throw ModelError("temperature must be 0 or more, got \(settings.temperature)") }
        guard settings.topP > 0, settings.topP <= 1 else { throw ModelError("top_p must be above 0 and at most 1, got \(settings.topP)") }
        self.settings = settings
        generator = SeededGenerator(seed: settings.seed)
    }

    /// The next token from `logits`.
    public mutating func pick(_ logits: [Float]) -> Int {
        LlamaModel.pick(from: logits, settings: settings, generator: &generator)
    }
}
