import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("flow ml train and eval")
struct MLCommandLineTests {
    /// A random Llama model folder whose vocabulary fits the byte-level fixture tokenizer.
    static func makeModel(in folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let (vocabulary, hidden, intermediate, layers, heads, kvHeads) = (600, 32, 48, 2, 4, 2)
        let config: [String: Any] = [
            "model_type": "llama", "vocab_size": vocabulary, "hidden_size": hidden, "intermediate_size": intermediate,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kvHeads, "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0, "tie_word_embeddings": true,
        ]
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("config.json"))
        var generator = SeededGenerator(seed: 11)
        func random(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -0.2...0.2, using: &generator) } }
        let headDimension = hidden / heads
        var tensors: [SafeTensorsWriter.Tensor] = [
            .init(name: "model.embed_tokens.weight", shape: [vocabulary, hidden], values: random(vocabulary * hidden)),
            .init(name: "model.norm.weight", shape: [hidden], values: Array(repeating: 1, count: hidden)),
        ]
        for layer in 0..<layers {
            let p = "model.layers.\(layer)."
            tensors += [
                .init(name: p + "input_layernorm.weight", shape: [hidden], values: Array(repeating: 1, count: hidden)),
                .init(name: p + "post_attention_layernorm.weight", shape: [hidden], values: Array(repeating: 1, count: hidden)),
                .init(name: p + "self_attn.q_proj.weight", shape: [heads * headDimension, hidden], values: random(heads * headDimension * hidden)),
                .init(name: p + "self_attn.k_proj.weight", shape: [kvHeads * headDimension, hidden], values: random(kvHeads * headDimension * hidden)),
                .init(name: p + "self_attn.v_proj.weight", shape: [kvHeads * headDimension, hidden], values: random(kvHeads * headDimension * hidden)),
                .init(name: p + "self_attn.o_proj.weight", shape: [hidden, heads * headDimension], values: random(hidden * heads * headDimension)),
                .init(name: p + "mlp.gate_proj.weight", shape: [intermediate, hidden], values: random(intermediate * hidden)),
                .init(name: p + "mlp.up_proj.weight", shape: [intermediate, hidden], values: random(intermediate * hidden)),
                .init(name: p + "mlp.down_proj.weight", shape: [hidden, intermediate], values: random(hidden * intermediate)),
            ]
        }
        try SafeTensorsWriter.write(tensors, metadata: ["format": "pt"], to: folder.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json"), to: folder.appendingPathComponent("tokenizer.json"))
    }

    func flow(_ arguments: [String]) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, arguments) }) }
        }
    }

    @Test("flow ml train shows progress and checkpoints, resumes, and flow ml eval finds the adapter lowered the loss")
    func trainAndEvaluate() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flow-ml-cli-\(UUID().uuidString.prefix(8))")
        let model = root.appendingPathComponent("model")
        try Self.makeModel(in: model)
        let data = root.appendingPathComponent("data.jsonl")
        let lines = (0..<8).map { #"{"text": "The board approved plan \#($0) and the budget grew in every region."}"# }
        try lines.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let output = root.appendingPathComponent("adapter")
        let common = ["--model", model.path, "--data", data.path, "--output", output.path, "--rank", "4", "--alpha", "8", "--lr", "3e-2",
                      "--batch-size", "2", "--save-steps", "2", "--target-modules", "all-linear", "--max-length", "64"]

        let first = try await flow(["ml", "train", "--steps", "4"] + common)
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("step 4/4"))
        #expect(first.standardOutput.contains("checkpoint checkpoint-2"))
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("adapter_model.safetensors").path))

        let resumed = try await flow(["ml", "train", "--steps", "8", "--resume"] + common)
        #expect(resumed.status == 0, "\(resumed.standardError)")
        #expect(resumed.standardOutput.contains("resuming at step 4"))
        #expect(resumed.standardOutput.contains("step 8/8"))

        let evaluated = try await flow(["ml", "eval", "--model", model.path, "--data", data.path, "--adapter", output.path])
        #expect(evaluated.status == 0, "\(evaluated.standardError)")
        let figures = try JSONDecoder().decode([String: Double].self, from: Data(evaluated.standardOutput.utf8))
        let base = try #require(figures["base_loss"])
        let adapted = try #require(figures["adapter_loss"])
        #expect(adapted < base, "the adapter trained on this data should lower its loss: \(figures)")

        let missing = try await flow(["ml", "train", "--model", root.appendingPathComponent("nothing").path, "--data", data.path, "--output", output.path])
        #expect(missing.status != 0)
        #expect(missing.standardError.contains("config.json"))
        try? FileManager.default.removeItem(at: root)
    }
}
