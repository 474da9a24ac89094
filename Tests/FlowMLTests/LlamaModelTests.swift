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

    @Test("the logits of a tiny model equal Transformers' to 1e-4", arguments: ["tiny-llama", "tiny-qwen2"])
    func logits(name: String) throws {
        let folder = Repository.file("Tests/FlowMLTests/Fixtures/\(name)")
        let model = try LlamaModel(folder: folder)
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: folder.appendingPathComponent("expected-logits.json")))
        #expect(expected.ids.count == 2)
        for (ids, reference) in zip(expected.ids, expected.logits) {
            let logits = try model.logits(ids)
            #expect(logits.count == reference.count)
            var worst: Float = 0
            for (value, wanted) in zip(logits, reference) {
                worst = max(worst, abs(value - wanted) / max(1, abs(wanted)))
            }
            #expect(worst < 1e-4, "\(name): largest relative difference \(worst)")
        }
    }

    @Test("the configurations read as Transformers wrote them, sharded weights included")
    func configurations() throws {
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

    @Test("a token id outside the vocabulary is refused with the reason")
    func badToken() throws {
        let model = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-qwen2"))
        #expect(throws: ModelError.self) { try model.logits([1, 64]) }
    }
}
