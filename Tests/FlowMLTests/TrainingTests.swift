import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("LoRA training, against PyTorch and PEFT")
struct TrainingTests {
    struct Step: Decodable {
        var loss: Float
        var gradients: [String: [Float]]?
    }

    struct Trace: Decodable {
        var ids: [[Int]]
        var labels: [[Int]]
        var lr: Float
        var beta1: Float
        var beta2: Float
        var eps: Float
        var weight_decay: Float
        var steps: [Step]
        var final: [String: [Float]]
    }

    /// PEFT names a parameter `<module>.lora_A.default.weight`; `(module, isA)`.
    static func split(_ name: String) -> (String, Bool) {
        let isA = name.contains(".lora_A.")
        return (String(name[..<name.range(of: isA ? ".lora_A." : ".lora_B.")!.lowerBound]), isA)
    }

    @Test("the loss with masked labels and the adapter's gradients equal PyTorch's, and three AdamW steps land on the same weights")
    func matchesPyTorch() async throws {
        try await onOwnThread {
            let fixtures = Repository.file("Tests/FlowMLTests/Fixtures")
            let model = try LlamaModel(folder: fixtures.appendingPathComponent("tiny-llama"))
            var adapter = try LoRAAdapter(folder: fixtures.appendingPathComponent("tiny-llama-lora"))
            let trace = try JSONDecoder().decode(Trace.self, from: Data(contentsOf: fixtures.appendingPathComponent("tiny-llama-lora/expected-training.json")))
            let batch = TrainingBatch(ids: trace.ids, labels: trace.labels)
            let positions = trace.ids.map(\.count).max()!
            // PyTorch and we each lie within these bounds of the exact values.
            let lossBound = 2 * RoundingBound.forwardPass(model.configuration, positions: positions, adapterRank: adapter.rank, withLoss: true)
            let gradientBound = 2 * RoundingBound.backwardPass(model.configuration, positions: positions, adapterRank: adapter.rank)
            var optimizer = AdamW(learningRate: trace.lr, beta1: trace.beta1, beta2: trace.beta2, epsilon: trace.eps, weightDecay: trace.weight_decay)
            // How far the weights may drift apart through the optimizer: a gradient off by δ
            // moves AdamW's m̂ by at most δ and √v̂ (a weighted root mean square) by at most δ,
            // so the step m̂ / (√v̂ + ε), with |m̂| ≤ √v̂ on these first steps, moves by at most
            // (1 + 1.01)·δ / (√v̂ + ε), times the learning rate (on three steps |m̂| ≤ 1.01·√v̂, by
            // Cauchy–Schwarz over the two averages' weights); summed over the steps, per weight,
            // to first order (the weights' own drift changes the next gradient far less than δ).
            var drift: [String: [Double]] = [:]
            var secondMoments: [String: [Double]] = [:]
            for (index, step) in trace.steps.enumerated() {
                let (loss, gradients) = try model.lossAndGradients(batch, adapter: adapter)
                #expect(Double(abs(loss - step.loss)) <= lossBound * max(1, Double(step.loss)), "step \(index): loss \(loss), PyTorch \(step.loss)")
                var largestGradient: [String: Double] = [:]
                for (key, values) in gradients.a.map({ ($0.key + "#A", $0.value) }) + gradients.b.map({ ($0.key + "#B", $0.value) }) {
                    largestGradient[key] = Double(values.map(abs).max()!)
                }
                if let expected = step.gradients {
                    #expect(expected.count == 12, "A and B of six modules")
                    for (name, reference) in expected {
                        let (module, isA) = Self.split(name)
                        let mine = try #require(isA ? gradients.a[module] : gradients.b[module], "no gradient for \(name)")
                        // Relative to the gradient's own scale: PyTorch and we sum in other orders.
                        let scale = Double(reference.map(abs).max()!)
                        let largest = Double(zip(mine, reference).map { abs($0 - $1) }.max()!)
                        #expect(largest <= gradientBound * scale, "\(name): off by \(largest) at a scale of \(scale), bound \(gradientBound * scale)")
                    }
                }
                let t = Double(index + 1)
                for (key, values) in gradients.a.map({ ($0.key + "#A", $0.value) }) + gradients.b.map({ ($0.key + "#B", $0.value) }) {
                    let delta = gradientBound * largestGradient[key]!
                    var moments = secondMoments[key] ?? Array(repeating: 0, count: values.count)
                    var bound = drift[key] ?? Array(repeating: 0, count: values.count)
                    for i in values.indices {
                        moments[i] = Double(trace.beta2) * moments[i] + (1 - Double(trace.beta2)) * Double(values[i]) * Double(values[i])
                        let root = (moments[i] / (1 - pow(Double(trace.beta2), t))).squareRoot()
                        bound[i] += Double(trace.lr) * 2.01 * delta / (root + Double(trace.eps))
                    }
                    secondMoments[key] = moments
                    drift[key] = bound
                }
                optimizer.update(&adapter, with: gradients)
            }
            for (name, reference) in trace.final {
                let (module, isA) = Self.split(name)
                let mine = try #require(isA ? adapter.a[module] : adapter.b[module])
                let bound = try #require(drift[module + (isA ? "#A" : "#B")])
                // Beyond the drift, each side's weights carry their own rounding: a few ulps.
                let worst = zip(zip(mine, reference), bound).map { pair, drift in
                    Double(abs(pair.0 - pair.1)) / (drift + 4 * Double(max(abs(pair.1), Float.leastNormalMagnitude).ulp))
                }.max()!
                #expect(worst <= 1, "\(name) after three steps: \(worst) of the bound")
            }
        }
    }
}
