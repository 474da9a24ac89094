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

    static func worst(_ values: [Float], _ reference: [Float]) -> Float {
        zip(values, reference).reduce(0) { max($0, abs($1.0 - $1.1) / max(1e-3, abs($1.1))) }
    }

    @Test("the loss with masked labels and the adapter's gradients equal PyTorch's, and three AdamW steps land on the same weights")
    func matchesPyTorch() throws {
        let fixtures = Repository.file("Tests/FlowMLTests/Fixtures")
        let model = try LlamaModel(folder: fixtures.appendingPathComponent("tiny-llama"))
        var adapter = try LoRAAdapter(folder: fixtures.appendingPathComponent("tiny-llama-lora"))
        let trace = try JSONDecoder().decode(Trace.self, from: Data(contentsOf: fixtures.appendingPathComponent("tiny-llama-lora/expected-training.json")))
        let batch = TrainingBatch(ids: trace.ids, labels: trace.labels)
        var optimizer = AdamW(learningRate: trace.lr, beta1: trace.beta1, beta2: trace.beta2, epsilon: trace.eps, weightDecay: trace.weight_decay)
        for (index, step) in trace.steps.enumerated() {
            let (loss, gradients) = try model.lossAndGradients(batch, adapter: adapter)
            #expect(abs(loss - step.loss) / step.loss < 1e-5, "step \(index): loss \(loss), PyTorch \(step.loss)")
            if let expected = step.gradients {
                #expect(expected.count == 12, "A and B of six modules")
                for (name, reference) in expected {
                    let (module, isA) = Self.split(name)
                    let mine = try #require(isA ? gradients.a[module] : gradients.b[module], "no gradient for \(name)")
                    // Relative to the gradient's own scale: PyTorch and we sum in other orders.
                    let scale = reference.map(abs).max()!
                    let largest = zip(mine, reference).map { abs($0 - $1) }.max()!
                    #expect(largest / scale < 1e-4, "\(name): off by \(largest) at a scale of \(scale)")
                }
            }
            optimizer.update(&adapter, with: gradients)
        }
        for (name, reference) in trace.final {
            let (module, isA) = Self.split(name)
            let mine = try #require(isA ? adapter.a[module] : adapter.b[module])
            let largest = zip(mine, reference).map { abs($0 - $1) }.max()!
            #expect(largest < 1e-5, "\(name) after three steps: off by \(largest)")
        }
    }
}
