import Foundation

/// A batch for causal language modelling: token ids and, per position, the label to
/// predict there (-100 where no loss applies), as Transformers takes them; position t's
/// logits are scored against label t + 1.
public struct TrainingBatch: Sendable {
    public var ids: [[Int]]
    public var labels: [[Int]]

    public init(ids: [[Int]], labels: [[Int]]) {
        self.ids = ids
        self.labels = labels
    }

    public static let ignoredLabel = -100
}

/// The gradients of a LoRA adapter's A and B matrices, by module path.
public struct LoRAGradients: Sendable {
    public var a: [String: [Float]]
    public var b: [String: [Float]]
}

extension LlamaModel {
    /// The mean cross-entropy of `batch` over its labelled positions, and its gradients
    /// with respect to the adapter only: the base stays frozen, so no base gradient is
    /// ever formed, but the backward pass flows through every layer to reach the adapters.
    public func lossAndGradients(_ batch: TrainingBatch, adapter: LoRAAdapter, dropout: LoRADropout? = nil) throws -> (loss: Float, gradients: LoRAGradients) {
        var gradients = LoRAGradients(a: adapter.a.mapValues { [Float](repeating: 0, count: $0.count) }, b: adapter.b.mapValues { [Float](repeating: 0, count: $0.count) })
        // Sequences are packed one after another into the same rows, up to
        // `Self.rowsPerPack` rows a pack: the products run over many rows at once (fast),
        // while the activations kept for the backward pass are one pack's (small).
        // Attention stays within each sequence.
        var packs: [Pack] = [Pack()]
        for (sequenceIDs, labels) in zip(batch.ids, batch.labels) {
            guard sequenceIDs.count == labels.count else { throw ModelError("a sequence has \(sequenceIDs.count) ids but \(labels.count) labels") }
            guard !sequenceIDs.isEmpty else { continue }
            if !packs[packs.count - 1].ids.isEmpty, packs[packs.count - 1].ids.count + sequenceIDs.count > Self.rowsPerPack { packs.append(Pack()) }
            packs[packs.count - 1].append(sequenceIDs, labels: labels)
        }
        let labelled = packs.reduce(0) { $0 + $1.targets.filter { $0 != TrainingBatch.ignoredLabel }.count }
        guard labelled > 0 else { throw ModelError("the batch has no labelled position: every label is -100") }
        var loss: Float = 0
        for (index, pack) in packs.enumerated() where !pack.ids.isEmpty {
            let packDropout = dropout.map { LoRADropout(probability: $0.probability, seed: LoRADropout.seed($0.seed, index)) }
            loss += try accumulate(ids: pack.ids, targets: pack.targets, sequences: pack.sequences, adapter: adapter, dropout: packDropout, normaliser: Float(labelled), into: &gradients)
        }
        return (loss / Float(labelled), gradients)
    }

    /// The most rows (tokens) one pass packs together.
    static let rowsPerPack = 512

    /// Sequences packed into consecutive rows; row t is scored against label t + 1 of its
    /// own sequence.
    private struct Pack {
        var ids: [Int] = []
        var targets: [Int] = []
        var sequences: [Range<Int>] = []

        mutating func append(_ sequenceIDs: [Int], labels: [Int]) {
            let start = ids.count
            ids += sequenceIDs
            targets += labels.dropFirst() + [TrainingBatch.ignoredLabel]
            sequences.append(start..<ids.count)
        }
    }

    /// What a linear layer's forward pass keeps for its backward pass.
    struct LinearTrace {
        var input: [Float]
        /// `input A^T` when the module has an adapter.
        var down: [Float]?
        /// The dropout's scaled mask (0 or 1 / (1 - p) per input) when it dropped any.
        var keep: [Float]?
    }

    private struct LayerTrace {
        var input: [Float]
        var normed1: [Float]
        var q: LinearTrace, k: LinearTrace, v: LinearTrace
        var qRotated: [Float], kRotated: [Float], values: [Float]
        /// [sequence][head][length x length].
        var probabilities: [[[Float]]]
        var context: LinearTrace
        var middle: [Float]
        var normed2: [Float]
        var gate: [Float], up: [Float]
        var gateLinear: LinearTrace, upLinear: LinearTrace, downLinear: LinearTrace
    }

    /// `x W^T (+ b) + s (x A^T) B^T` for a module, and what its backward pass needs.
    func forwardLinear(_ x: [Float], rows: Int, module: String, outputs: Int, adapter: LoRAAdapter?, dropout: LoRADropout? = nil) -> ([Float], LinearTrace) {
        let w = weights[module + ".weight"]!
        let inputs = w.count / outputs
        var y = Matrix.product(x, rows: rows, inner: inputs, transposing: w, rows: outputs)
        if let b = weights[module + ".bias"] {
            for row in 0..<rows { for column in 0..<outputs { y[row * outputs + column] += b[column] } }
        }
        var trace = LinearTrace(input: x, down: nil, keep: nil)
        if let adapter, let a = adapter.a[module], let b = adapter.b[module] {
            var adapterInput = x
            if let dropout {
                let keep = dropout.mask(count: x.count, module: module)
                for index in adapterInput.indices { adapterInput[index] *= keep[index] }
                trace.input = adapterInput
                trace.keep = keep
            }
            let down = Matrix.product(adapterInput, rows: rows, inner: inputs, transposing: a, rows: adapter.rank)
            let up = Matrix.product(down, rows: rows, inner: adapter.rank, transposing: b, rows: outputs)
            for index in y.indices { y[index] += adapter.scaling * up[index] }
            trace.down = down
        }
        return (y, trace)
    }

    /// Backward through `y = x W^T (+ b) + s (x A^T) B^T`: adds the adapter's gradients and
    /// returns the gradient of x.
    private func backwardLinear(_ dy: [Float], trace: LinearTrace, rows: Int, module: String, outputs: Int, adapter: LoRAAdapter, into gradients: inout LoRAGradients) -> [Float] {
        let w = weights[module + ".weight"]!
        let inputs = w.count / outputs
        var dx = Matrix.product(dy, rows: rows, inner: outputs, by: w, columns: inputs)
        if let a = adapter.a[module], let b = adapter.b[module], let down = trace.down {
            let s = adapter.scaling
            let r = adapter.rank
            // dB [out, r] += s dy^T down; d(down) [rows, r] = s dy B; dA [r, in] += d(down)^T x.
            let dyT = transpose(dy, rows: rows, columns: outputs)
            let dB = Matrix.product(dyT, rows: outputs, inner: rows, by: down, columns: r)
            var dDown = Matrix.product(dy, rows: rows, inner: outputs, by: b, columns: r)
            for index in dDown.indices { dDown[index] *= s }
            let dDownT = transpose(dDown, rows: rows, columns: r)
            let dA = Matrix.product(dDownT, rows: r, inner: rows, by: trace.input, columns: inputs)
            for index in dB.indices { gradients.b[module]![index] += s * dB[index] }
            for index in dA.indices { gradients.a[module]![index] += dA[index] }
            var viaAdapter = Matrix.product(dDown, rows: rows, inner: r, by: a, columns: inputs)
            if let keep = trace.keep { for index in viaAdapter.indices { viaAdapter[index] *= keep[index] } }
            for index in dx.indices { dx[index] += viaAdapter[index] }
        }
        return dx
    }

    private func transpose(_ m: [Float], rows: Int, columns: Int) -> [Float] {
        var t = [Float](repeating: 0, count: m.count)
        for row in 0..<rows { for column in 0..<columns { t[column * rows + row] = m[row * columns + column] } }
        return t
    }

    /// Backward through RMSNorm `y = w * x / rms(x)`.
    private func backwardRMSNorm(_ dy: [Float], input x: [Float], weight: [Float], rows: Int) -> [Float] {
        let width = weight.count
        var dx = [Float](repeating: 0, count: x.count)
        for row in 0..<rows {
            let base = row * width
            var sum: Float = 0
            for column in 0..<width { sum += x[base + column] * x[base + column] }
            let r = 1 / (sum / Float(width) + configuration.rmsNormEpsilon).squareRoot()
            var dot: Float = 0
            for column in 0..<width { dot += weight[column] * dy[base + column] * x[base + column] }
            for column in 0..<width {
                dx[base + column] = r * weight[column] * dy[base + column] - r * r * r / Float(width) * x[base + column] * dot
            }
        }
        return dx
    }

    /// Rotary position embedding of each head of each position, or (`inverse`) its transpose.
    func rotate(_ x: [Float], heads: Int, length: Int, cos: [Float], sin: [Float], inverse: Bool) -> [Float] {
        // Forward: y = x cos + rotate_half(x) sin. Its transpose: dx = dy cos + rotate_half^T(dy sin).
        let dimension = configuration.headDimension
        let half = dimension / 2
        var out = [Float](repeating: 0, count: x.count)
        for position in 0..<length {
            for head in 0..<heads {
                let base = (position * heads + head) * dimension
                let table = position * dimension
                for i in 0..<dimension {
                    if inverse {
                        let other = i < half ? x[base + i + half] * sin[table + i + half] : -x[base + i - half] * sin[table + i - half]
                        out[base + i] = x[base + i] * cos[table + i] + other
                    } else {
                        let other = i < half ? -x[base + i + half] : x[base + i - half]
                        out[base + i] = x[base + i] * cos[table + i] + other * sin[table + i]
                    }
                }
            }
        }
        return out
    }

    private func accumulate(ids: [Int], targets: [Int], sequences: [Range<Int>], adapter: LoRAAdapter, dropout: LoRADropout?, normaliser: Float, into gradients: inout LoRAGradients) throws -> Float {
        let c = configuration
        let length = ids.count
        let hidden = c.hiddenSize
        let dimension = c.headDimension
        var x = try embed(ids)
        // Each row's rotary angles are those of its position within its own sequence.
        let (sequenceCos, sequenceSin) = rotaryTables(length: sequences.map(\.count).max() ?? 0)
        var cos: [Float] = []
        var sin: [Float] = []
        for sequence in sequences {
            cos += sequenceCos[0..<(sequence.count * dimension)]
            sin += sequenceSin[0..<(sequence.count * dimension)]
        }
        let attention = Attention(heads: c.headCount, keyValueHeads: c.keyValueHeadCount, dimension: dimension)
        var traces: [LayerTrace] = []

        for layer in 0..<c.layerCount {
            let prefix = "model.layers.\(layer)."
            let input = x
            let normed1 = rmsNorm(x, weight: weights[prefix + "input_layernorm.weight"]!, rows: length)
            let (q, qTrace) = forwardLinear(normed1, rows: length, module: prefix + "self_attn.q_proj", outputs: c.headCount * dimension, adapter: adapter, dropout: dropout)
            let (k, kTrace) = forwardLinear(normed1, rows: length, module: prefix + "self_attn.k_proj", outputs: c.keyValueHeadCount * dimension, adapter: adapter, dropout: dropout)
            let (v, vTrace) = forwardLinear(normed1, rows: length, module: prefix + "self_attn.v_proj", outputs: c.keyValueHeadCount * dimension, adapter: adapter, dropout: dropout)
            let qRotated = rotate(q, heads: c.headCount, length: length, cos: cos, sin: sin, inverse: false)
            let kRotated = rotate(k, heads: c.keyValueHeadCount, length: length, cos: cos, sin: sin, inverse: false)
            let (context, probabilities) = attention.forward(q: qRotated, k: kRotated, v: v, spans: sequences.map { Attention.Span(queries: $0, keys: $0) })
            let (attended, contextTrace) = forwardLinear(context, rows: length, module: prefix + "self_attn.o_proj", outputs: hidden, adapter: adapter, dropout: dropout)
            for index in x.indices { x[index] += attended[index] }
            let middle = x
            let normed2 = rmsNorm(x, weight: weights[prefix + "post_attention_layernorm.weight"]!, rows: length)
            let (gate, gateTrace) = forwardLinear(normed2, rows: length, module: prefix + "mlp.gate_proj", outputs: c.intermediateSize, adapter: adapter, dropout: dropout)
            let (up, upTrace) = forwardLinear(normed2, rows: length, module: prefix + "mlp.up_proj", outputs: c.intermediateSize, adapter: adapter, dropout: dropout)
            var activated = [Float](repeating: 0, count: gate.count)
            for index in activated.indices { activated[index] = gate[index] / (1 + Foundation.exp(-gate[index])) * up[index] }
            let (mlp, downTrace) = forwardLinear(activated, rows: length, module: prefix + "mlp.down_proj", outputs: hidden, adapter: adapter, dropout: dropout)
            for index in x.indices { x[index] += mlp[index] }
            traces.append(LayerTrace(
                input: input, normed1: normed1, q: qTrace, k: kTrace, v: vTrace, qRotated: qRotated, kRotated: kRotated, values: v,
                probabilities: probabilities, context: contextTrace, middle: middle, normed2: normed2, gate: gate, up: up,
                gateLinear: gateTrace, upLinear: upTrace, downLinear: downTrace
            ))
        }

        // The loss and its gradient at the logits (the softmax's exponentials computed once).
        let finalNorm = weights["model.norm.weight"]!
        let final = rmsNorm(x, weight: finalNorm, rows: length)
        let head = head()
        let vocabulary = c.vocabularySize
        var dLogits = Matrix.product(final, rows: length, inner: hidden, transposing: head, rows: vocabulary)
        var loss: Float = 0
        dLogits.withUnsafeMutableBufferPointer { logits in
            for row in 0..<length {
                let base = row * vocabulary
                let label = targets[row]
                guard label != TrainingBatch.ignoredLabel else {
                    for token in 0..<vocabulary { logits[base + token] = 0 }
                    continue
                }
                var maximum = -Float.infinity
                for token in 0..<vocabulary { maximum = max(maximum, logits[base + token]) }
                let labelLogit = logits[base + label]
                var total: Float = 0
                for token in 0..<vocabulary {
                    let e = Foundation.exp(logits[base + token] - maximum)
                    logits[base + token] = e
                    total += e
                }
                loss += Foundation.log(total) + maximum - labelLogit
                let scale = 1 / (total * normaliser)
                for token in 0..<vocabulary { logits[base + token] *= scale }
                logits[base + label] -= 1 / normaliser
            }
        }

        // Backward, from the head down to the first layer.
        let dFinal = Matrix.product(dLogits, rows: length, inner: vocabulary, by: head, columns: hidden)
        var dx = backwardRMSNorm(dFinal, input: x, weight: finalNorm, rows: length)
        for layer in stride(from: c.layerCount - 1, through: 0, by: -1) {
            let prefix = "model.layers.\(layer)."
            let trace = traces[layer]
            // MLP.
            let dActivated = backwardLinear(dx, trace: trace.downLinear, rows: length, module: prefix + "mlp.down_proj", outputs: hidden, adapter: adapter, into: &gradients)
            var dGate = [Float](repeating: 0, count: dActivated.count)
            var dUp = [Float](repeating: 0, count: dActivated.count)
            for index in dActivated.indices {
                let g = trace.gate[index]
                let sigmoid = 1 / (1 + Foundation.exp(-g))
                dUp[index] = dActivated[index] * g * sigmoid
                dGate[index] = dActivated[index] * trace.up[index] * sigmoid * (1 + g * (1 - sigmoid))
            }
            var dNormed2 = backwardLinear(dGate, trace: trace.gateLinear, rows: length, module: prefix + "mlp.gate_proj", outputs: c.intermediateSize, adapter: adapter, into: &gradients)
            let viaUp = backwardLinear(dUp, trace: trace.upLinear, rows: length, module: prefix + "mlp.up_proj", outputs: c.intermediateSize, adapter: adapter, into: &gradients)
            for index in dNormed2.indices { dNormed2[index] += viaUp[index] }
            let viaNorm2 = backwardRMSNorm(dNormed2, input: trace.middle, weight: weights[prefix + "post_attention_layernorm.weight"]!, rows: length)
            for index in dx.indices { dx[index] += viaNorm2[index] }

            // Attention.
            let dContext = backwardLinear(dx, trace: trace.context, rows: length, module: prefix + "self_attn.o_proj", outputs: hidden, adapter: adapter, into: &gradients)
            let (dQRotated, dKRotated, dValues) = attention.backward(dContext: dContext, q: trace.qRotated, k: trace.kRotated, v: trace.values, probabilities: trace.probabilities, sequences: sequences)
            let dQ = rotate(dQRotated, heads: c.headCount, length: length, cos: cos, sin: sin, inverse: true)
            let dK = rotate(dKRotated, heads: c.keyValueHeadCount, length: length, cos: cos, sin: sin, inverse: true)
            var dNormed1 = backwardLinear(dQ, trace: trace.q, rows: length, module: prefix + "self_attn.q_proj", outputs: c.headCount * dimension, adapter: adapter, into: &gradients)
            let viaK = backwardLinear(dK, trace: trace.k, rows: length, module: prefix + "self_attn.k_proj", outputs: c.keyValueHeadCount * dimension, adapter: adapter, into: &gradients)
            let viaV = backwardLinear(dValues, trace: trace.v, rows: length, module: prefix + "self_attn.v_proj", outputs: c.keyValueHeadCount * dimension, adapter: adapter, into: &gradients)
            for index in dNormed1.indices { dNormed1[index] += viaK[index] + viaV[index] }
            let viaNorm1 = backwardRMSNorm(dNormed1, input: trace.input, weight: weights[prefix + "input_layernorm.weight"]!, rows: length)
            for index in dx.indices { dx[index] += viaNorm1[index] }
        }
        return loss
    }
}

/// AdamW as PyTorch's `torch.optim.AdamW` applies it: decoupled weight decay, then the
/// bias-corrected Adam step.
public struct AdamW: Sendable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public internal(set) var step = 0
    var firstMoments: [String: [Float]] = [:]
    var secondMoments: [String: [Float]] = [:]

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Updates every A and B of `adapter` from its gradients.
    public mutating func update(_ adapter: inout LoRAAdapter, with gradients: LoRAGradients) {
        step += 1
        let correction1 = 1 - Float(pow(Double(beta1), Double(step)))
        let correction2 = 1 - Float(pow(Double(beta2), Double(step)))
        for module in adapter.a.keys.sorted() {
            update(&adapter.a[module]!, gradient: gradients.a[module]!, key: module + ".A", correction1: correction1, correction2: correction2)
            update(&adapter.b[module]!, gradient: gradients.b[module]!, key: module + ".B", correction1: correction1, correction2: correction2)
        }
    }

    private mutating func update(_ parameter: inout [Float], gradient: [Float], key: String, correction1: Float, correction2: Float) {
        var m = firstMoments[key] ?? [Float](repeating: 0, count: parameter.count)
        var v = secondMoments[key] ?? [Float](repeating: 0, count: parameter.count)
        let stepSize = learningRate / correction1
        let root2 = correction2.squareRoot()
        for index in parameter.indices {
            parameter[index] *= 1 - learningRate * weightDecay
            m[index] = beta1 * m[index] + (1 - beta1) * gradient[index]
            v[index] = beta2 * v[index] + (1 - beta2) * gradient[index] * gradient[index]
            parameter[index] -= stepSize * m[index] / (v[index].squareRoot() / root2 + epsilon)
        }
        firstMoments[key] = m
        secondMoments[key] = v
    }
}
