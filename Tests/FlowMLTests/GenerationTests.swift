import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("text generation with a KV cache")
struct GenerationTests {
    struct Expected: Decodable {
        struct Case: Decodable {
            var prompt: [Int]
            var greedy: [Int]
        }
        var maxNewTokens: Int
        var cases: [Case]
        enum CodingKeys: String, CodingKey {
            case maxNewTokens = "max_new_tokens"
            case cases
        }
    }

    @Test("greedy generation equals Transformers' generate(do_sample=False) token for token", arguments: ["tiny-llama", "tiny-qwen2"])
    func greedyMatchesTransformers(name: String) async throws {
        try await onOwnThread {
            let folder = Repository.file("Tests/FlowMLTests/Fixtures/\(name)")
            let model = try LlamaModel(folder: folder)
            let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: folder.appendingPathComponent("expected-generation.json")))
            for example in expected.cases {
                let generation = try model.generate(prompt: example.prompt, settings: GenerationSettings(maximumNewTokens: expected.maxNewTokens))
                #expect(generation.tokens == example.greedy, "\(name) from \(example.prompt)")
                #expect(generation.finishReason == .length)
            }
        }
    }

    @Test("the cache gives the logits a full pass over the whole sequence gives")
    func cacheMatchesFullPass() async throws {
        try await onOwnThread {
            let model = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-llama"))
            let ids = [1, 5, 9, 17, 33, 2, 60, 7]
            let full = try model.logits(ids)
            let generation = try model.generate(prompt: Array(ids.prefix(3)), settings: GenerationSettings(maximumNewTokens: 5))
            // Feeding the generated tokens must reproduce what a full pass predicts at each step.
            let sequence = Array(ids.prefix(3)) + generation.tokens
            let reference = try model.logits(sequence)
            let vocabulary = model.configuration.vocabularySize
            for step in 2..<(sequence.count - 1) {
                let row = reference[(step * vocabulary)..<((step + 1) * vocabulary)]
                #expect(row.indices.max { row[$0] < row[$1] }.map { $0 - step * vocabulary } == sequence[step + 1])
            }
            #expect(full.count == ids.count * vocabulary)
        }
    }

    @Test("sampling is reproducible by seed, stays inside the top-p nucleus, and a stop token ends it")
    func sampling() async throws {
        try await onOwnThread {
            let model = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-llama"))
            let settings = GenerationSettings(maximumNewTokens: 16, temperature: 0.8, topP: 0.9, seed: 11)
            let first = try model.generate(prompt: [1, 5, 9], settings: settings)
            let second = try model.generate(prompt: [1, 5, 9], settings: settings)
            #expect(first == second)
            var other = settings
            other.seed = 12
            #expect(try model.generate(prompt: [1, 5, 9], settings: other).tokens != first.tokens)
            // A tiny nucleus leaves only the likeliest token: the same as greedy.
            let greedy = try model.generate(prompt: [1, 5, 9], settings: GenerationSettings(maximumNewTokens: 16))
            #expect(try model.generate(prompt: [1, 5, 9], settings: GenerationSettings(maximumNewTokens: 16, temperature: 1, topP: 1e-6, seed: 3)).tokens == greedy.tokens)
            var stopping = GenerationSettings(maximumNewTokens: 16)
            stopping.stopTokens = [greedy.tokens[3]]
            let stopped = try model.generate(prompt: [1, 5, 9], settings: stopping)
            #expect(stopped.finishReason == .eos)
            #expect(stopped.tokens == Array(greedy.tokens.prefix(3)))
            #expect(throws: ModelError.self) { try model.generate(prompt: [], settings: settings) }
            #expect(throws: ModelError.self) { try model.generate(prompt: [1], settings: GenerationSettings(topP: 0)) }
        }
    }
}
