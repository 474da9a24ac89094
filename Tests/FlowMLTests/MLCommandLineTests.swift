import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("flow ml train and eval")
struct MLCommandLineTests {
    /// A random Llama model folder whose vocabulary fits the byte-level fixture tokenizer.
    static func makeModel(in folder: URL) throws {
        var shape = ModelFactory.Shape(vocabulary: 600)
        shape.hidden = 32
        shape.intermediate = 48
        try ModelFactory.writeRandomLlama(to: folder, shape: shape, tokenizer: Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json"))
    }

    func flow(_ arguments: [String], input: String? = nil) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, arguments, input: input) }) }
        }
    }

    @Test("flow ml tokenize reads a model folder, adds its special tokens, and renders chats with and without the generation prompt as Transformers does")
    func tokenize() async throws {
        let folder = TokenizerFamilyTests.folder("mistral-v0.3")
        let (_, expected, chats) = try TokenizerFamilyTests.load("mistral-v0.3")
        let sample = expected.encodings[0]
        func ids(_ output: ProcessOutput) throws -> [Int] { try JSONDecoder().decode([Int].self, from: Data(output.standardOutput.utf8)) }
        let plain = try await flow(["ml", "tokenize", "--model", folder.path], input: sample.text)
        #expect(plain.status == 0, "\(plain.standardError)")
        #expect(try ids(plain) == sample.ids)
        let special = try await flow(["ml", "tokenize", "--model", folder.path, "--add-special-tokens"], input: sample.text)
        #expect(try ids(special) == sample.ids_with_special_tokens)
        let file = try await flow(["ml", "tokenize", "--tokenizer", folder.appendingPathComponent("tokenizer.json").path], input: sample.text)
        #expect(try ids(file) == sample.ids)

        struct Rendered: Decodable {
            var text: String
            var ids: [Int]
        }
        for (prompt, wanted) in [(false, expected.chats[1].without_generation_prompt), (true, expected.chats[1].with_generation_prompt)] {
            let output = try await flow(["ml", "tokenize", "--model", folder.path, "--chat"] + (prompt ? ["--add-generation-prompt"] : []), input: chats[1])
            #expect(output.status == 0, "\(output.standardError)")
            let rendered = try JSONDecoder().decode(Rendered.self, from: Data(output.standardOutput.utf8))
            #expect(rendered.text == wanted.text && rendered.ids == wanted.ids)
        }
        // The template's own refusal, and malformed input, end with a reason.
        let alternating = try await flow(["ml", "tokenize", "--model", folder.path, "--chat"], input: #"[{"role": "assistant", "content": "first"}]"#)
        #expect(alternating.status != 0)
        #expect(alternating.standardError.contains("conversation roles must alternate"))
        let malformed = try await flow(["ml", "tokenize", "--model", folder.path, "--chat"], input: "not json")
        #expect(malformed.status != 0 && !malformed.standardError.isEmpty)
        let neither = try await flow(["ml", "tokenize"], input: "x")
        #expect(neither.status != 0 && neither.standardError.contains("--model DIR or --tokenizer FILE"))
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

        let generate = ["ml", "generate", "--model", model.path, "--adapter", output.path, "--prompt", "The board", "--max-new-tokens", "12"]
        let generated = try await flow(generate)
        #expect(generated.status == 0, "\(generated.standardError)")
        #expect(generated.standardError.contains("tokens/s"))
        #expect(!generated.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect(try await flow(generate).standardOutput == generated.standardOutput, "greedy generation is deterministic")
        // A chat, rendered with the folder's template (ChatML here: it has none).
        let chat = try await flow(["ml", "generate", "--model", model.path, "--messages", #"[{"role": "user", "content": "The board"}]"#, "--max-new-tokens", "6"])
        #expect(chat.status == 0, "\(chat.standardError)")
        #expect(chat.standardError.contains("6 tokens") || chat.standardError.contains("finish: eos"), "\(chat.standardError)")

        let missing = try await flow(["ml", "train", "--model", root.appendingPathComponent("nothing").path, "--data", data.path, "--output", output.path])
        #expect(missing.status != 0)
        #expect(missing.standardError.contains("config.json"))
        try? FileManager.default.removeItem(at: root)
    }
}
