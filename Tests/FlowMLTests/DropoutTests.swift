import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("LoRA dropout")
struct DropoutTests {
    let model: LlamaModel
    let adapter: LoRAAdapter
    let batch = TrainingBatch(ids: [[1, 5, 9, 17, 33, 2, 60, 7], [3, 3, 40, 12, 8, 61, 0, 25]], labels: [[1, 5, 9, 17, 33, 2, 60, 7], [3, 3, 40, 12, 8, 61, 0, 25]])

    init() throws {
        model = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-llama"))
        adapter = .random(for: model, targetModules: ["q_proj", "up_proj"], range: -0.3...0.3, seed: 9)
    }

    @Test("the gradients with dropout are those of the loss under the same masks (central differences)")
    func gradientsMatchFiniteDifferences() async throws {
        try await onOwnThread {
            let dropout = LoRADropout(probability: 0.3, seed: 4)
            let (loss, gradients) = try model.lossAndGradients(batch, adapter: adapter, dropout: dropout)
            let (plain, _) = try model.lossAndGradients(batch, adapter: adapter)
            #expect(loss != plain, "dropping inputs changes the loss")
            try GradientCheck.expectMatchesCentralDifferences(model, batch, adapter: adapter, dropout: dropout)
        }
    }

    @Test("dropout 0 changes nothing, and the masks depend on the seed alone")
    func deterministicMasks() async throws {
        try await onOwnThread {
            let none = try model.lossAndGradients(batch, adapter: adapter)
            let zero = try model.lossAndGradients(batch, adapter: adapter, dropout: LoRADropout(probability: 0, seed: 1))
            #expect(none.loss == zero.loss)
            #expect(none.gradients.a == zero.gradients.a)
            let first = try model.lossAndGradients(batch, adapter: adapter, dropout: LoRADropout(probability: 0.5, seed: 1))
            let again = try model.lossAndGradients(batch, adapter: adapter, dropout: LoRADropout(probability: 0.5, seed: 1))
            let other = try model.lossAndGradients(batch, adapter: adapter, dropout: LoRADropout(probability: 0.5, seed: 2))
            #expect(first.loss == again.loss)
            #expect(first.loss != other.loss)
        }
    }

    @Test("a run with dropout resumed from a checkpoint goes on exactly as the uninterrupted run, and its adapter says lora_dropout")
    func resumeWithDropout() async throws {
        try await onOwnThread {
            let examples = (0..<12).map { index in
                let ids = (0..<10).map { (index * 3 + $0 * 7) % 64 }
                return TokenizedExample(ids: ids, labels: ids)
            }
            var settings = TrainingSettings()
            settings.rank = 4
            settings.maximumSteps = 6
            settings.batchSize = 2
            settings.checkpointEvery = 100
            settings.dropout = 0.1
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flow-dropout-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            let straight = try LoRATrainer(model: model, examples: examples, settings: settings, output: root.appendingPathComponent("straight"), resume: false)
            try straight.train()
            let first = try LoRATrainer(model: model, examples: examples, settings: settings, output: root.appendingPathComponent("resumed"), resume: false)
            try first.train(shouldStop: { first.trainerState.globalStep == 4 })
            let resumed = try LoRATrainer(model: model, examples: examples, settings: settings, output: root.appendingPathComponent("resumed"), resume: true)
            try resumed.train()
            #expect(resumed.trainerState.losses == straight.trainerState.losses)
            #expect(resumed.currentAdapter.b == straight.currentAdapter.b)
            #expect(try LoRAAdapter(folder: root.appendingPathComponent("straight")).dropout == 0.1)
            var invalid = settings
            invalid.dropout = 1
            #expect(throws: ModelError.self) { try LoRATrainer(model: model, examples: examples, settings: invalid, output: root.appendingPathComponent("x"), resume: false) }
        }
    }
}
