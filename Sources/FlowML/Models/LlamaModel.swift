import FlowCore
import Foundation

/// A decoder-only transformer of the Llama family (Llama, Mistral, Qwen2) in fp32 on the
/// CPU: RMSNorm, rotary position embeddings, grouped-query attention with a causal mask,
/// a SwiGLU MLP, optional q/k/v biases and tied embeddings, as Transformers computes them.
public struct LlamaModel: Sendable {
    public let configuration: ModelConfiguration
    let weights: FrozenWeights

    /// Loads a Hugging Face model folder: `config.json` and `model.safetensors`, or shards
    /// listed in `model.safetensors.index.json`. F16 and BF16 matrices stay in their
    /// precision, memory-mapped, and are widened per operation (``FrozenWeights``).
    public init(folder: URL) throws {
        configuration = try ModelConfiguration(contentsOf: folder.appendingPathComponent("config.json"))
        var files: [URL] = []
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: index.path) {
            guard let map = try? JSONValue(contentsOf: index)["weight_map"]?.objectValue?.compactMapValues(\.stringValue) else {
                throw ModelError("\(index.path) has no weight_map")
            }
            files = Set(map.values).sorted().map { folder.appendingPathComponent($0) }
        } else {
            files = [folder.appendingPathComponent("model.safetensors")]
        }
        weights = try FrozenWeights(files: files)
        try checkShapes()
    }

    /// Bytes of base weights held in memory as F32; half-precision matrices stay mapped
    /// from their files and are not counted.
    public var residentWeightBytes: Int { weights.residentBytes }

    private func weight(_ name: String, count: Int) throws {
        guard let stored = weights.count(name) else { throw ModelError("the model has no tensor \(name)") }
        guard stored == count else { throw ModelError("tensor \(name) has \(stored) values; the configuration implies \(count)") }
    }

    private func checkShapes() throws {
        let c = configuration
        try weight("model.embed_tokens.weight", count: c.vocabularySize * c.hiddenSize)
        for layer in 0..<c.layerCount {
            let prefix = "model.layers.\(layer)."
            try weight(prefix + "self_attn.q_proj.weight", count: c.headCount * c.headDimension * c.hiddenSize)
            try weight(prefix + "self_attn.k_proj.weight", count: c.keyValueHeadCount * c.headDimension * c.hiddenSize)
            try weight(prefix + "self_attn.v_proj.weight", count: c.keyValueHeadCount * c.headDimension * c.hiddenSize)
            try weight(prefix + "self_attn.o_proj.weight", count: c.hiddenSize * c.headCount * c.headDimension)
            try weight(prefix + "mlp.gate_proj.weight", count: c.intermediateSize * c.hiddenSize)
            try weight(prefix + "mlp.up_proj.weight", count: c.intermediateSize * c.hiddenSize)
            try weight(prefix + "mlp.down_proj.weight", count: c.hiddenSize * c.intermediateSize)
        }
        if !c.tiedEmbeddings { try weight("lm_head.weight", count: c.vocabularySize * c.hiddenSize) }
    }

    /// The input and output widths of every linear module, by module path, for writing
    /// adapters.
    public var linearShapes: [String: (inputs: Int, outputs: Int)] {
        let c = configuration
        var shapes: [String: (inputs: Int, outputs: Int)] = [:]
        for layer in 0..<c.layerCount {
            let prefix = "model.layers.\(layer)."
            shapes[prefix + "self_attn.q_proj"] = (c.hiddenSize, c.headCount * c.headDimension)
            shapes[prefix + "self_attn.k_proj"] = (c.hiddenSize, c.keyValueHeadCount * c.headDimension)
            shapes[prefix + "self_attn.v_proj"] = (c.hiddenSize, c.keyValueHeadCount * c.headDimension)
            shapes[prefix + "self_attn.o_proj"] = (c.headCount * c.headDimension, c.hiddenSize)
            shapes[prefix + "mlp.gate_proj"] = (c.hiddenSize, c.intermediateSize)
            shapes[prefix + "mlp.up_proj"] = (c.hiddenSize, c.intermediateSize)
            shapes[prefix + "mlp.down_proj"] = (c.intermediateSize, c.hiddenSize)
        }
        return shapes
    }

    /// The logits of every position of `ids`: [ids.count, vocabulary], row-major; with an
    /// adapter, of the base model with the adapter applied.
    public func logits(_ ids: [Int], adapter: LoRAAdapter? = nil) throws -> [Float] {
        var cache = KVCache(layers: configuration.layerCount)
        return try forward(ids, cache: &cache, adapter: adapter, allPositions: true)
    }

    /// Runs `ids` through the model after the positions `cache` holds, appending their keys
    /// and values to it. Returns the logits of every new position (`allPositions`) or of
    /// the last one only, which is all generation needs.
    func forward(_ ids: [Int], cache: inout KVCache, adapter: LoRAAdapter?, allPositions: Bool) throws -> [Float] {
        if let adapter {
            for module in adapter.a.keys where linearShapes[module] == nil {
                throw ModelError("the adapter targets \(module), which this model does not have")
            }
        }
        guard !ids.isEmpty else { throw ModelError("no token to run the model on") }
        let c = configuration
        let length = ids.count
        let start = cache.length
        let hidden = c.hiddenSize
        var x = try embed(ids)
        let (allCos, allSin) = rotaryTables(length: start + length)
        let cos = Array(allCos[(start * c.headDimension)...])
        let sin = Array(allSin[(start * c.headDimension)...])
        for layer in 0..<c.layerCount {
            let prefix = "model.layers.\(layer)."
            let normed = rmsNorm(x, weight: weights[prefix + "input_layernorm.weight"]!, rows: length)
            let attention = attend(normed, layer: layer, prefix: prefix + "self_attn.", length: length, cos: cos, sin: sin, cache: &cache, adapter: adapter)
            x.add(attention)
            let normed2 = rmsNorm(x, weight: weights[prefix + "post_attention_layernorm.weight"]!, rows: length)
            let mlp = feedForward(normed2, prefix: prefix + "mlp.", length: length, adapter: adapter)
            x.add(mlp)
        }
        cache.length += length
        let rows = allPositions ? length : 1
        let last = Array(x[((length - rows) * hidden)...])
        let final = rmsNorm(last, weight: weights["model.norm.weight"]!, rows: rows)
        return weights.product(final, rows: rows, name: headName, outputs: c.vocabularySize)!
    }

    /// The embeddings of `ids`, [ids.count, hidden], reading only their rows.
    func embed(_ ids: [Int]) throws -> [Float] {
        let c = configuration
        var x = [Float]()
        x.reserveCapacity(ids.count * c.hiddenSize)
        for id in ids {
            guard (0..<c.vocabularySize).contains(id) else { throw ModelError("token id \(id) is outside the vocabulary of \(c.vocabularySize)") }
            x.append(contentsOf: weights.rows("model.embed_tokens.weight", id..<(id + 1), width: c.hiddenSize)!)
        }
        return x
    }

    /// The output projection [vocabulary, hidden] as F32: the embeddings when tied.
    func head() -> [Float] {
        weights[headName]!
    }

    /// The output projection's tensor: the embeddings when tied.
    var headName: String { configuration.tiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight" }

    func rmsNorm(_ x: [Float], weight: [Float], rows: Int) -> [Float] {
        let width = weight.count
        let epsilon = configuration.rmsNormEpsilon
        return [Float].filled(count: x.count) { out in
            x.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { weight in
                    let w = weight.baseAddress!
                    for row in 0..<rows {
                        let x = x.baseAddress! + row * width
                        let out = out + row * width
                        let scale = 1 / (Elementwise.dot(x, x, count: width) / Float(width) + epsilon).squareRoot()
                        for column in 0..<width { out[column] = w[column] * (x[column] * scale) }
                    }
                }
            }
        }
    }

    /// cos and sin of every position and rotary frequency, each [length, headDimension].
    func rotaryTables(length: Int) -> ([Float], [Float]) {
        let dimension = configuration.headDimension
        let half = dimension / 2
        var cos = [Float](repeating: 0, count: length * dimension)
        var sin = [Float](repeating: 0, count: length * dimension)
        for i in 0..<half {
            let inverseFrequency = 1 / Float(pow(Double(configuration.ropeTheta), Double(2 * i) / Double(dimension)))
            for position in 0..<length {
                let angle = Float(position) * inverseFrequency
                cos[position * dimension + i] = Foundation.cos(angle)
                cos[position * dimension + i + half] = Foundation.cos(angle)
                sin[position * dimension + i] = Foundation.sin(angle)
                sin[position * dimension + i + half] = Foundation.sin(angle)
            }
        }
        return (cos, sin)
    }

    /// Attention of `length` new positions over every position the cache holds (the new
    /// ones included, causally), after appending the new keys and values.
    private func attend(_ x: [Float], layer: Int, prefix: String, length: Int, cos: [Float], sin: [Float], cache: inout KVCache, adapter: LoRAAdapter?) -> [Float] {
        let c = configuration
        let dimension = c.headDimension
        let kvWidth = c.keyValueHeadCount * dimension
        var q = forwardLinear(x, rows: length, module: prefix + "q_proj", outputs: c.headCount * dimension, adapter: adapter).0
        var k = forwardLinear(x, rows: length, module: prefix + "k_proj", outputs: kvWidth, adapter: adapter).0
        let v = forwardLinear(x, rows: length, module: prefix + "v_proj", outputs: kvWidth, adapter: adapter).0
        q = rotate(q, heads: c.headCount, length: length, cos: cos, sin: sin, inverse: false)
        k = rotate(k, heads: c.keyValueHeadCount, length: length, cos: cos, sin: sin, inverse: false)
        cache.keys[layer].append(contentsOf: k)
        cache.values[layer].append(contentsOf: v)
        let attention = Attention(heads: c.headCount, keyValueHeads: c.keyValueHeadCount, dimension: dimension)
        let context = attention.forward(q: q, k: cache.keys[layer], v: cache.values[layer], queries: length, keys: cache.length + length)
        return forwardLinear(context, rows: length, module: prefix + "o_proj", outputs: c.hiddenSize, adapter: adapter).0
    }

    private func feedForward(_ x: [Float], prefix: String, length: Int, adapter: LoRAAdapter?) -> [Float] {
        let c = configuration
        let gate = forwardLinear(x, rows: length, module: prefix + "gate_proj", outputs: c.intermediateSize, adapter: adapter).0
        let up = forwardLinear(x, rows: length, module: prefix + "up_proj", outputs: c.intermediateSize, adapter: adapter).0
        return forwardLinear(swiGLU(gate: gate, up: up), rows: length, module: prefix + "down_proj", outputs: c.hiddenSize, adapter: adapter).0
    }
}

extension LlamaModel {
    /// The mean cross-entropy over the labelled positions of `examples`, and its
    /// perplexity, with or without an adapter.
    public func evaluate(_ examples: [TokenizedExample], adapter: LoRAAdapter? = nil) throws -> (loss: Double, perplexity: Double) {
        var total = 0.0
        var count = 0
        let vocabulary = configuration.vocabularySize
        for example in examples {
            let logits = try self.logits(example.ids, adapter: adapter)
            for position in 0..<(example.ids.count - 1) {
                let label = example.labels[position + 1]
                guard label != TrainingBatch.ignoredLabel else { continue }
                let row = logits[position * vocabulary..<(position + 1) * vocabulary]
                let maximum = row.max()!
                let sum = row.reduce(0.0) { $0 + Foundation.exp(Double($1 - maximum)) }
                total += Foundation.log(sum) + Double(maximum) - Double(logits[position * vocabulary + label])
                count += 1
            }
        }
        guard count > 0 else { throw ModelError("the evaluation set has no labelled position") }
        let loss = total / Double(count)
        return (loss, Foundation.exp(loss))
    }
}
