import FlowCore
import Foundation

/// Writes small random Llama model folders: for demonstrations and tests on machines that
/// download no models. The weights are random; the format is the real one.
public enum ModelFactory {
    public struct Shape: Sendable {
        public var vocabulary: Int
        public var hidden = 64
        public var intermediate = 128
        public var layers = 2
        public var heads = 4
        public var keyValueHeads = 2
        /// How the matrices are stored: F32, or BF16 / F16 as large checkpoints are.
        public var matrixType: TensorType = .f32

        public init(vocabulary: Int) { self.vocabulary = vocabulary }
    }

    /// Writes `config.json`, `model.safetensors` and, when given, a copy of `tokenizer`.
    public static func writeRandomLlama(to folder: URL, shape: Shape, tokenizer: URL? = nil, seed: UInt64 = 11) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config: JSONValue = [
            "model_type": "llama", "vocab_size": .integer(Int64(shape.vocabulary)), "hidden_size": .integer(Int64(shape.hidden)),
            "intermediate_size": .integer(Int64(shape.intermediate)), "num_hidden_layers": .integer(Int64(shape.layers)),
            "num_attention_heads": .integer(Int64(shape.heads)), "num_key_value_heads": .integer(Int64(shape.keyValueHeads)),
            "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true, "architectures": ["LlamaForCausalLM"],
        ]
        try FlowJSON.prettyEncoder.encode(config).write(to: folder.appendingPathComponent("config.json"))
        var generator = SeededGenerator(seed: seed)
        func random(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -0.2...0.2, using: &generator) } }
        let (v, h, i) = (shape.vocabulary, shape.hidden, shape.intermediate)
        let d = h / shape.heads
        var tensors: [SafeTensorsWriter.Tensor] = [
            .init(name: "model.embed_tokens.weight", shape: [v, h], values: random(v * h)),
            .init(name: "model.norm.weight", shape: [h], values: Array(repeating: 1, count: h)),
        ]
        for layer in 0..<shape.layers {
            let p = "model.layers.\(layer)."
            tensors += [
                .init(name: p + "input_layernorm.weight", shape: [h], values: Array(repeating: 1, count: h)),
                .init(name: p + "post_attention_layernorm.weight", shape: [h], values: Array(repeating: 1, count: h)),
                .init(name: p + "self_attn.q_proj.weight", shape: [shape.heads * d, h], values: random(shape.heads * d * h)),
                .init(name: p + "self_attn.k_proj.weight", shape: [shape.keyValueHeads * d, h], values: random(shape.keyValueHeads * d * h)),
                .init(name: p + "self_attn.v_proj.weight", shape: [shape.keyValueHeads * d, h], values: random(shape.keyValueHeads * d * h)),
                .init(name: p + "self_attn.o_proj.weight", shape: [h, shape.heads * d], values: random(h * shape.heads * d)),
                .init(name: p + "mlp.gate_proj.weight", shape: [i, h], values: random(i * h)),
                .init(name: p + "mlp.up_proj.weight", shape: [i, h], values: random(i * h)),
                .init(name: p + "mlp.down_proj.weight", shape: [h, i], values: random(h * i)),
            ]
        }
        for index in tensors.indices where tensors[index].shape.count == 2 { tensors[index].type = shape.matrixType }
        try SafeTensorsWriter.write(tensors, metadata: ["format": "pt"], to: folder.appendingPathComponent("model.safetensors"))
        if let tokenizer {
            let target = folder.appendingPathComponent("tokenizer.json")
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(at: tokenizer, to: target)
        }
    }
}
