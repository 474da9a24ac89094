import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("Llama-family models, against PyTorch and Transformers")
struct LlamaModelTests {
    struct Expected: Decodable {
        var ids: [[Int]]
        var logits: [[Float]]
    }

    @Test("the logits of a tiny model equal Transformers' within the rounding bound of a forward pass", arguments: ["tiny-llama", "tiny-qwen2"])
    func logits(name: String) async throws {
        try await onOwnThread {
            let folder = Repository.file("Tests/FlowMLTests/Fixtures/\(name)")
            let model = try LlamaModel(folder: folder)
            let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: folder.appendingPathComponent("expected-logits.json")))
            #expect(expected.ids.count == 2)
            for (ids, reference) in zip(expected.ids, expected.logits) {
                let logits = try model.logits(ids)
                #expect(logits.count == reference.count)
                // PyTorch and we each lie within the bound of the exact logits.
                let bound = 2 * RoundingBound.forwardPass(model.configuration, positions: ids.count)
                let worst = RoundingBound.largestScaledDifference(logits, reference)
                #expect(worst <= bound, "\(name): largest difference \(worst), bound \(bound)")
            }
        }
    }

    @Test("the configurations read as Transformers wrote them, sharded weights included")
    func configurations() async throws {
        try await onOwnThread {
            let llama = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-llama")).configuration
            #expect(llama.architecture == "llama")
            #expect(llama.keyValueHeadCount == 2)
            #expect(!llama.tiedEmbeddings)
            #expect(!llama.attentionBias)
            let qwen = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-qwen2")).configuration
            #expect(qwen.tiedEmbeddings)
            #expect(qwen.attentionBias)
            #expect(qwen.ropeTheta == 1_000_000)
        }
    }

    @Test("a token id outside the vocabulary is refused with the reason")
    func badToken() async throws {
        try await onOwnThread {
            let model = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-qwen2"))
            #expect(throws: ModelError.self) { try model.logits([1, 64]) }
        }
    }
}

@Suite("LoRA adapters in PEFT's layout")
struct LoRAAdapterTests {
    let fixtures = Repository.file("Tests/FlowMLTests/Fixtures")

    @Test("an adapter PEFT saved changes the logits exactly as PEFT applies it")
    func appliesPEFTAdapter() async throws {
        try await onOwnThread {
            let model = try LlamaModel(folder: fixtures.appendingPathComponent("tiny-llama"))
            let adapter = try LoRAAdapter(folder: fixtures.appendingPathComponent("tiny-llama-lora"))
            #expect(adapter.rank == 4)
            #expect(adapter.scaling == 2)
            #expect(adapter.a.count == 6, "q_proj, v_proj and down_proj in two layers")
            let expected = try JSONDecoder().decode(LlamaModelTests.Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent("tiny-llama-lora/expected-logits.json")))
            for (ids, reference) in zip(expected.ids, expected.logits) {
                let adapted = try model.logits(ids, adapter: adapter)
                let bound = 2 * RoundingBound.forwardPass(model.configuration, positions: ids.count, adapterRank: adapter.rank)
                #expect(RoundingBound.largestScaledDifference(adapted, reference) <= bound)
                // And the adapter matters: without it the logits differ by far more than rounding.
                #expect(RoundingBound.largestScaledDifference(try model.logits(ids), reference) > 10 * bound)
            }
        }
    }

    @Test("an adapter written here reads back with the same names, shapes, scaling and effect")
    func writesPEFTLayout() async throws {
        try await onOwnThread {
            let model = try LlamaModel(folder: fixtures.appendingPathComponent("tiny-llama"))
            let adapter = try LoRAAdapter(folder: fixtures.appendingPathComponent("tiny-llama-lora"))
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-adapter-\(UUID().uuidString.prefix(8))")
            try adapter.write(to: folder, baseModel: "tiny-llama", shapes: model.linearShapes)
            let back = try LoRAAdapter(folder: folder)
            #expect(back.rank == adapter.rank)
            #expect(back.scaling == adapter.scaling)
            #expect(back.targetModules == adapter.targetModules)
            #expect(back.a == adapter.a)
            #expect(back.b == adapter.b)
            let names = try SafeTensors(contentsOf: folder.appendingPathComponent("adapter_model.safetensors")).entries
            #expect(names["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]?.shape == [4, 32])
            #expect(names["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"]?.shape == [32, 4])
            #expect(try model.logits([1, 2, 3], adapter: back) == model.logits([1, 2, 3], adapter: adapter))
            try? FileManager.default.removeItem(at: folder)
        }
    }

    @Test("a half-precision model keeps its matrices mapped in their precision and computes what F32 copies of the same weights compute", arguments: [TensorType.bf16, .f16])
    func halfPrecision(type: TensorType) async throws {
        try await onOwnThread {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flow-half-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            // A vocabulary past 4,096 rows of 64: decoding multiplies the head a block of
            // rows at a time (FrozenWeights.product), and this makes two blocks, one short.
            var shape = ModelFactory.Shape(vocabulary: 5000)
            shape.matrixType = type
            let half = root.appendingPathComponent("half")
            try ModelFactory.writeRandomLlama(to: half, shape: shape)
            // The same weights, widened, written as F32.
            let widened = root.appendingPathComponent("widened")
            try FileManager.default.createDirectory(at: widened, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: half.appendingPathComponent("config.json"), to: widened.appendingPathComponent("config.json"))
            let file = try SafeTensors(contentsOf: half.appendingPathComponent("model.safetensors"))
            #expect(file.entries["model.layers.0.mlp.up_proj.weight"]?.type == type)
            let tensors = try file.names.map { SafeTensorsWriter.Tensor(name: $0, shape: file.entries[$0]!.shape, values: try file.floats($0)) }
            try SafeTensorsWriter.write(tensors, to: widened.appendingPathComponent("model.safetensors"))

            let halfModel = try LlamaModel(folder: half)
            let fullModel = try LlamaModel(folder: widened)
            #expect(halfModel.residentWeightBytes * 20 < fullModel.residentWeightBytes, "only norms are resident: \(halfModel.residentWeightBytes) of \(fullModel.residentWeightBytes)")
            let ids = [3, 17, 60, 2, 95, 41]
            #expect(try halfModel.logits(ids) == fullModel.logits(ids))
            let adapter = LoRAAdapter.random(for: halfModel, targetModules: ["q_proj", "down_proj"], range: -0.1...0.1, seed: 5)
            let batch = TrainingBatch(ids: [ids], labels: [ids])
            let (halfLoss, halfGradients) = try halfModel.lossAndGradients(batch, adapter: adapter)
            let (fullLoss, fullGradients) = try fullModel.lossAndGradients(batch, adapter: adapter)
            #expect(halfLoss == fullLoss)
            #expect(halfGradients.a == fullGradients.a)
        }
    }
}
