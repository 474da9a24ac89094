import FlowML
import Foundation
import Testing

/// What a `config.json` says about how long a sequence may be.
struct ModelConfigurationTests {
    private func configuration(_ fields: String) throws -> ModelConfiguration {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("""
        {"vocab_size": 32000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, \(fields)}
        """.utf8).write(to: file)
        return try ModelConfiguration(contentsOf: file)
    }

    @Test func mistralsSlidingWindowBoundsTheContext() throws {
        // Mistral-7B-v0.1's published config: attention past 4096 positions is windowed,
        // which this engine does not compute.
        let mistral = try configuration(#""model_type": "mistral", "max_position_embeddings": 32768, "sliding_window": 4096"#)
        #expect(mistral.contextLength == 4096)
        // Mistral v0.3 has none.
        let v3 = try configuration(#""model_type": "mistral", "max_position_embeddings": 32768, "sliding_window": null"#)
        #expect(v3.contextLength == 32768)
    }

    @Test func qwenWindowCountsOnlyWhenSwitchedOn() throws {
        let off = try configuration(#""model_type": "qwen2", "max_position_embeddings": 32768, "sliding_window": 4096, "use_sliding_window": false"#)
        #expect(off.contextLength == 32768)
        let on = try configuration(#""model_type": "qwen2", "max_position_embeddings": 32768, "sliding_window": 4096, "use_sliding_window": true"#)
        #expect(on.contextLength == 4096)
    }

    @Test func llamaUsesItsPositions() throws {
        #expect(try configuration(#""model_type": "llama", "max_position_embeddings": 2048"#).contextLength == 2048)
        #expect(try configuration(#""model_type": "llama""#).contextLength == 4096)
    }
}
