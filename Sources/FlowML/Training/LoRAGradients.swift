import Foundation
import Synchronization

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

    /// Zero for every matrix of `adapter`.
    init(zeroFor adapter: LoRAAdapter) {
        a = adapter.a.mapValues { [Float](repeating: 0, count: $0.count) }
        b = adapter.b.mapValues { [Float](repeating: 0, count: $0.count) }
    }

    /// `self += factor * other`, matrix by matrix.
    mutating func add(_ other: LoRAGradients, scaledBy factor: Float = 1) {
        for (module, values) in other.a { a[module]!.add(values, scaledBy: factor) }
        for (module, values) in other.b { b[module]!.add(values, scaledBy: factor) }
    }
}

extension LlamaModel {
    /// The mean cross-entropy of `batch` over its labelled positions, and its gradients
    /// with respect to the adapter only: the base stays frozen, so no base gradient is
    /// ever formed, but the backward pass flows through every layer to reach the adapters.
    public func lossAndGradients(_ batch: TrainingBatch, adapter: LoRAAdapter, dropout: LoRADropout? = nil) throws -> (loss: Float, gradients: LoRAGradients) {
        // Sequences are packed one after another into the same rows, up to
        // `Self.rowsPerPack` rows a pack: the products run over many rows at once (fast),
        // while the activations kept for the backward pass are one pack's (small).
        // Attention stays within each sequence. The packs run side by side, one per
        // engine thread.
        var packs: [Pack] = [Pack()]
        for (sequenceIDs, labels) in zip(batch.ids, batch.labels) {
            guard sequenceIDs.count == labels.count else { throw ModelError("a sequence has \(sequenceIDs.count) ids but \(labels.count) labels") }
            guard !sequenceIDs.isEmpty else { continue }
            if !packs[packs.count - 1].ids.isEmpty, packs[packs.count - 1].ids.count + sequenceIDs.count > Self.rowsPerPack { packs.append(Pack()) }
            packs[packs.count - 1].append(sequenceIDs, labels: labels)
        }
        packs.removeAll { $0.ids.isEmpty }
        let labelled = packs.reduce(0) { $0 + $1.targets.filter { $0 != TrainingBatch.ignoredLabel }.count }
        guard labelled > 0 else { throw ModelError("the batch has no labelled position: every label is -100") }
        let zero = LoRAGradients(zeroFor: adapter)
        let outcomes = Mutex<[Result<(loss: Float, gradients: LoRAGradients), any Error>?]>(Array(repeating: nil, count: packs.count))
        ComputeThreads.forEach(packs.count) { [packs] index in
            let pack = packs[index]
            let packDropout = dropout.map { LoRADropout(probability: $0.probability, seed: LoRADropout.seed($0.seed, index)) }
            let outcome = Result { () throws -> (loss: Float, gradients: LoRAGradients) in
                var gradients = zero
                let loss = try accumulate(ids: pack.ids, targets: pack.targets, sequences: pack.sequences, adapter: adapter, dropout: packDropout, normaliser: Float(labelled), into: &gradients)
                return (loss, gradients)
            }
            outcomes.withLock { $0[index] = outcome }
        }
        // Summed in pack order, so the result does not depend on which pack finished first.
        var loss: Float = 0
        var gradients = zero
        for outcome in outcomes.withLock({ $0 }) {
            let (packLoss, packGradients) = try outcome!.get()
            loss += packLoss
            gradients.add(packGradients)
        }
        return (loss / Float(labelled), gradients)
    }

    /// The most rows (tokens) one pass packs together.
    static let rowsPerPack = 256

    /// Sequences packed into consecutive rows; row t is scored against label t + 1 of its
    /// own sequence.
    private struct Pack: Sendable {
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
        let name = module + ".weight"
        let inputs = weights.count(name)! / outputs
        var y = weights.product(x, rows: rows, name: name, outputs: outputs)!
        if let b = weights[module + ".bias"] {
            y.withUnsafeMutableBufferPointer { y in
                b.withUnsafeBufferPointer { b in
                    for row in 0..<rows { Elementwise.add(b.baseAddress!, to: y.baseAddress! + row * outputs, count: outputs) }
                }
            }
        }
        var trace = LinearTrace(input: x, down: nil, keep: nil)
        if let adapter, let a = adapter.a[module], let b = adapter.b[module] {
            var adapterInput = x
            if let dropout {
                let keep = dropout.mask(count: x.count, module: module)
                adapterInput.multiply(by: keep)
                trace.input = adapterInput
                trace.keep = keep
            }
            let down = Matrix.product(adapterInput, rows: rows, inner: inputs, transposing: a, rows: adapter.rank)
            // y += s down B^T, in the product itself.
            down.withUnsafeBufferPointer { down in
                b.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { y in
                        Matrix.multiply(down.baseAddress!, lda: adapter.rank, b.baseAddress!, ldb: adapter.rank, transposingB: true,
                                        into: y.baseAddress!, ldc: outputs, m: rows, n: outputs, k: adapter.rank, alpha: adapter.scaling, beta: 1)
                    }
                }
            }
            trace.down = down
        }
        return (y, trace)
    }

    /// Backward through `y = x W^T (+ b) + s (x A^T) B^T`: adds the adapter's gradients to
    /// `gradients` and the gradient of x to `dx`, which an empty array starts (the
    /// modules that read one input sum into one buffer, with no pass to add them up). With
    /// `inputGradient` false (the first layer's projections, whose input is the frozen
    /// embeddings) no gradient of x is formed.
    private func backwardLinear(_ dy: [Float], trace: LinearTrace, rows: Int, module: String, outputs: Int, adapter: LoRAAdapter, inputGradient: Bool = true, into gradients: inout LoRAGradients, dx: inout [Float]) {
        let w = weights[module + ".weight"]!
        let inputs = w.count / outputs
        let beta: Float = dx.isEmpty ? 0 : 1
        if inputGradient, dx.isEmpty { dx = [Float](unsetCount: rows * inputs) }
        dy.withUnsafeBufferPointer { dy in
            let dy = dy.baseAddress!
            if inputGradient {
                w.withUnsafeBufferPointer { w in
                    dx.withUnsafeMutableBufferPointer { dx in
                        Matrix.multiply(dy, lda: outputs, w.baseAddress!, ldb: inputs, into: dx.baseAddress!, ldc: inputs, m: rows, n: inputs, k: outputs, beta: beta)
                    }
                }
            }
            guard let a = adapter.a[module], let b = adapter.b[module], let down = trace.down else { return }
            let s = adapter.scaling
            let r = adapter.rank
            // dB [out, r] += s dy^T down.
            down.withUnsafeBufferPointer { down in
                gradients.b[module]!.withUnsafeMutableBufferPointer { dB in
                    Matrix.multiply(dy, lda: outputs, transposingA: true, down.baseAddress!, ldb: r, into: dB.baseAddress!, ldc: r, m: outputs, n: r, k: rows, alpha: s, beta: 1)
                }
            }
            // d(down) [rows, r] = s dy B; dA [r, in] += d(down)^T x; dx += d(down) A.
            let dDown = [Float].filled(count: rows * r) { dDown in
                b.withUnsafeBufferPointer { b in
                    Matrix.multiply(dy, lda: outputs, b.baseAddress!, ldb: r, into: dDown, ldc: r, m: rows, n: r, k: outputs, alpha: s)
                }
            }
            dDown.withUnsafeBufferPointer { dDown in
                trace.input.withUnsafeBufferPointer { x in
                    gradients.a[module]!.withUnsafeMutableBufferPointer { dA in
                        Matrix.multiply(dDown.baseAddress!, lda: r, transposingA: true, x.baseAddress!, ldb: inputs, into: dA.baseAddress!, ldc: inputs, m: r, n: inputs, k: rows, beta: 1)
                    }
                }
            }
            guard inputGradient else { return }
            if let keep = trace.keep {
                var viaAdapter = Matrix.product(dDown, rows: rows, inner: r, by: a, columns: inputs)
                viaAdapter.multiply(by: keep)
                dx.add(viaAdapter)
            } else {
                dDown.withUnsafeBufferPointer { dDown in
                    a.withUnsafeBufferPointer { a in
                        dx.withUnsafeMutableBufferPointer { dx in
                            Matrix.multiply(dDown.baseAddress!, lda: r, a.baseAddress!, ldb: inputs, into: dx.baseAddress!, ldc: inputs, m: rows, n: inputs, k: r, beta: 1)
                        }
                    }
                }
            }
        }
    }

    /// Backward through RMSNorm `y = w * x / rms(x)`, adding the gradient of x to `dx`.
    private func backwardRMSNorm(_ dy: [Float], input x: [Float], weight: [Float], rows: Int, addingTo dx: inout [Float]) {
        let width = weight.count
        let epsilon = configuration.rmsNormEpsilon
        var weighted = [Float](unsetCount: width)
        x.withUnsafeBufferPointer { x in
            dy.withUnsafeBufferPointer { dy in
                weight.withUnsafeBufferPointer { weight in
                    weighted.withUnsafeMutableBufferPointer { weighted in
                        dx.withUnsafeMutableBufferPointer { dx in
                            let (w, weighted) = (weight.baseAddress!, weighted.baseAddress!)
                            for row in 0..<rows {
                                let x = x.baseAddress! + row * width
                                let dy = dy.baseAddress! + row * width
                                let dx = dx.baseAddress! + row * width
                                let r = 1 / (Elementwise.dot(x, x, count: width) / Float(width) + epsilon).squareRoot()
                                for column in 0..<width { weighted[column] = w[column] * dy[column] }
                                let correction = r * r * r / Float(width) * Elementwise.dot(weighted, x, count: width)
                                for column in 0..<width { dx[column] += r * weighted[column] - correction * x[column] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rotary position embedding of each head of each position, or (`inverse`) its transpose.
    func rotate(_ x: [Float], heads: Int, length: Int, cos: [Float], sin: [Float], inverse: Bool) -> [Float] {
        // Forward: y = x cos + rotate_half(x) sin. Its transpose: dx = dy cos + rotate_half^T(dy sin).
        let dimension = configuration.headDimension
        let half = dimension / 2
        return [Float].filled(count: x.count) { out in
            x.withUnsafeBufferPointer { x in
                cos.withUnsafeBufferPointer { cos in
                    sin.withUnsafeBufferPointer { sin in
                        for position in 0..<length {
                            let cos = cos.baseAddress! + position * dimension
                            let sin = sin.baseAddress! + position * dimension
                            for head in 0..<heads {
                                let x = x.baseAddress! + (position * heads + head) * dimension
                                let out = out + (position * heads + head) * dimension
                                if inverse {
                                    for i in 0..<half {
                                        out[i] = x[i] * cos[i] + x[i + half] * sin[i + half]
                                        out[i + half] = x[i + half] * cos[i + half] - x[i] * sin[i]
                                    }
                                } else {
                                    for i in 0..<half {
                                        out[i] = x[i] * cos[i] - x[i + half] * sin[i]
                                        out[i + half] = x[i + half] * cos[i + half] + x[i] * sin[i + half]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// SwiGLU's output, `silu(gate) * up`.
    func swiGLU(gate: [Float], up: [Float]) -> [Float] {
        [Float].filled(count: gate.count) { out in
            gate.withUnsafeBufferPointer { gate in
                up.withUnsafeBufferPointer { up in
                    guard !gate.isEmpty else { return }
                    Elementwise.swiGLU(gate: gate.baseAddress!, up: up.baseAddress!, into: out, count: gate.count)
                }
            }
        }
    }

    private func swiGLUBackward(_ d: [Float], gate: [Float], up: [Float]) -> (dGate: [Float], dUp: [Float]) {
        var dUp: [Float] = []
        let dGate = [Float].filled(count: d.count) { dGate in
            dUp = [Float].filled(count: d.count) { dUp in
                d.withUnsafeBufferPointer { d in
                    gate.withUnsafeBufferPointer { gate in
                        up.withUnsafeBufferPointer { up in
                            guard !d.isEmpty else { return }
                            Elementwise.swiGLUBackward(d.baseAddress!, gate: gate.baseAddress!, up: up.baseAddress!, dGate: dGate, dUp: dUp, count: d.count)
                        }
                    }
                }
            }
        }
        return (dGate, dUp)
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
            x.add(attended)
            let middle = x
            let normed2 = rmsNorm(x, weight: weights[prefix + "post_attention_layernorm.weight"]!, rows: length)
            let (gate, gateTrace) = forwardLinear(normed2, rows: length, module: prefix + "mlp.gate_proj", outputs: c.intermediateSize, adapter: adapter, dropout: dropout)
            let (up, upTrace) = forwardLinear(normed2, rows: length, module: prefix + "mlp.up_proj", outputs: c.intermediateSize, adapter: adapter, dropout: dropout)
            let activated = swiGLU(gate: gate, up: up)
            let (mlp, downTrace) = forwardLinear(activated, rows: length, module: prefix + "mlp.down_proj", outputs: hidden, adapter: adapter, dropout: dropout)
            x.add(mlp)
            traces.append(LayerTrace(
                input: input, normed1: normed1, q: qTrace, k: kTrace, v: vTrace, qRotated: qRotated, kRotated: kRotated, values: v,
                probabilities: probabilities, context: contextTrace, middle: middle, normed2: normed2, gate: gate, up: up,
                gateLinear: gateTrace, upLinear: upTrace, downLinear: downTrace
            ))
        }

        // The loss and its gradient at the logits (the softmax's exponentials computed once).
        // Only the positions with a label go through the LM head, the largest product at a
        // large vocabulary: with a completion-only loss (chat data, where only the
        // assistant's turns count) most positions have none, and their logits and
        // gradient would be computed to be thrown away.
        let finalNorm = weights["model.norm.weight"]!
        let final = rmsNorm(x, weight: finalNorm, rows: length)
        let head = head()
        let vocabulary = c.vocabularySize
        let labelled = (0..<length).filter { targets[$0] != TrainingBatch.ignoredLabel }
        let allLabelled = labelled.count == length
        var scored: [Float] = allLabelled ? final : []
        if !allLabelled {
            scored.reserveCapacity(labelled.count * hidden)
            for row in labelled { scored += final[(row * hidden)..<((row + 1) * hidden)] }
        }
        var dLogits = labelled.isEmpty ? [] : Matrix.product(scored, rows: labelled.count, inner: hidden, transposing: head, rows: vocabulary)
        var loss: Float = 0
        dLogits.withUnsafeMutableBufferPointer { logits in
            for (index, position) in labelled.enumerated() {
                let label = targets[position]
                let row = logits.baseAddress! + index * vocabulary
                let maximum = Elementwise.maximum(row, count: vocabulary)
                let labelLogit = row[label]
                let total = Elementwise.exponentiate(row, count: vocabulary, subtracting: maximum)
                loss += Foundation.log(total) + maximum - labelLogit
                Elementwise.scale(row, count: vocabulary, by: 1 / (total * normaliser))
                row[label] -= 1 / normaliser
            }
        }

        // Backward, from the head down to the first layer; the positions with no label
        // have no gradient at the head.
        let dScored = labelled.isEmpty ? [] : Matrix.product(dLogits, rows: labelled.count, inner: vocabulary, by: head, columns: hidden)
        var dFinal = allLabelled ? dScored : [Float](repeating: 0, count: length * hidden)
        if !allLabelled {
            for (index, position) in labelled.enumerated() {
                dFinal.replaceSubrange((position * hidden)..<((position + 1) * hidden), with: dScored[(index * hidden)..<((index + 1) * hidden)])
            }
        }
        var dx = [Float](repeating: 0, count: x.count)
        backwardRMSNorm(dFinal, input: x, weight: finalNorm, rows: length, addingTo: &dx)
        for layer in stride(from: c.layerCount - 1, through: 0, by: -1) {
            let prefix = "model.layers.\(layer)."
            let trace = traces[layer]
            // MLP.
            var dActivated: [Float] = []
            backwardLinear(dx, trace: trace.downLinear, rows: length, module: prefix + "mlp.down_proj", outputs: hidden, adapter: adapter, into: &gradients, dx: &dActivated)
            let (dGate, dUp) = swiGLUBackward(dActivated, gate: trace.gate, up: trace.up)
            var dNormed2: [Float] = []
            backwardLinear(dGate, trace: trace.gateLinear, rows: length, module: prefix + "mlp.gate_proj", outputs: c.intermediateSize, adapter: adapter, into: &gradients, dx: &dNormed2)
            backwardLinear(dUp, trace: trace.upLinear, rows: length, module: prefix + "mlp.up_proj", outputs: c.intermediateSize, adapter: adapter, into: &gradients, dx: &dNormed2)
            backwardRMSNorm(dNormed2, input: trace.middle, weight: weights[prefix + "post_attention_layernorm.weight"]!, rows: length, addingTo: &dx)

            // Attention.
            var dContext: [Float] = []
            backwardLinear(dx, trace: trace.context, rows: length, module: prefix + "self_attn.o_proj", outputs: hidden, adapter: adapter, into: &gradients, dx: &dContext)
            let (dQRotated, dKRotated, dValues) = attention.backward(dContext: dContext, q: trace.qRotated, k: trace.kRotated, v: trace.values, probabilities: trace.probabilities, sequences: sequences)
            let dQ = rotate(dQRotated, heads: c.headCount, length: length, cos: cos, sin: sin, inverse: true)
            let dK = rotate(dKRotated, heads: c.keyValueHeadCount, length: length, cos: cos, sin: sin, inverse: true)
            // The first layer's input is the frozen embeddings: no gradient flows there.
            let inputGradient = layer > 0
            var dNormed1: [Float] = []
            backwardLinear(dQ, trace: trace.q, rows: length, module: prefix + "self_attn.q_proj", outputs: c.headCount * dimension, adapter: adapter, inputGradient: inputGradient, into: &gradients, dx: &dNormed1)
            backwardLinear(dK, trace: trace.k, rows: length, module: prefix + "self_attn.k_proj", outputs: c.keyValueHeadCount * dimension, adapter: adapter, inputGradient: inputGradient, into: &gradients, dx: &dNormed1)
            backwardLinear(dValues, trace: trace.v, rows: length, module: prefix + "self_attn.v_proj", outputs: c.keyValueHeadCount * dimension, adapter: adapter, inputGradient: inputGradient, into: &gradients, dx: &dNormed1)
            if inputGradient {
                backwardRMSNorm(dNormed1, input: trace.input, weight: weights[prefix + "input_layernorm.weight"]!, rows: length, addingTo: &dx)
            }
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
