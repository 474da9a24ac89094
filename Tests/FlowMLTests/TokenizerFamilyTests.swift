@testable import FlowML
import FlowTesting
import Foundation
import Testing

/// Tokenizers and chat templates in the configuration each model family ships, against
/// what `tokenizers` and `transformers` produce (`Fixtures/make_family_tokenizers.py`).
@Suite("tokenizers and chat templates of Llama 2, Mistral v0.3, Llama 3, Qwen2.5 and Metaspace, against Transformers")
struct TokenizerFamilyTests {
    static let families = ["llama2-legacy", "mistral-v0.3", "llama3", "qwen2.5", "metaspace-always"]

    struct Expected: Decodable {
        struct Encoding: Decodable {
            var text: String
            var ids: [Int]
            var ids_with_special_tokens: [Int]
            var decoded: String
            var decoded_without_special_tokens: String
        }
        struct Rendered: Decodable {
            var text: String?
            var ids: [Int]?
            var error: String?
        }
        struct Chat: Decodable {
            var without_generation_prompt: Rendered
            var with_generation_prompt: Rendered
        }
        struct TRLExample: Decodable {
            var ids: [Int]
            var first_learned: Int
        }
        var encodings: [Encoding]
        var chats: [Chat]
        var trl: [TRLExample]
    }

    static func folder(_ family: String) -> URL { Repository.file("Tests/FlowMLTests/Fixtures/tokenizers/\(family)") }

    static func load(_ family: String) throws -> (ModelTokenizer, Expected, [String]) {
        let folder = folder(family)
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))
        // The messages, as JSON text in their written key order.
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("expected.json"))) as! [String: Any]
        let chats = (raw["chats"] as! [[String: Any]]).map { String(decoding: try! JSONSerialization.data(withJSONObject: $0["messages"]!), as: UTF8.self) }
        return (try ModelTokenizer(folder: folder), expected, chats)
    }

    @Test("encodings with and without special tokens, and decodings, equal Transformers' token for token and character for character", arguments: families)
    func encodings(family: String) async throws {
        try await onOwnThread {
            let (tokenizer, expected, _) = try Self.load(family)
            #expect(expected.encodings.count == 14)
            for sample in expected.encodings {
                let label = "\(family): \(sample.text.debugDescription)"
                #expect(tokenizer.encode(sample.text) == sample.ids, "\(label)")
                #expect(tokenizer.encode(sample.text, addSpecialTokens: true) == sample.ids_with_special_tokens, "\(label) with special tokens")
                #expect(tokenizer.decode(sample.ids).unicodeScalars.elementsEqual(sample.decoded.unicodeScalars), "\(label) decoded")
                #expect(tokenizer.decode(sample.ids, skipSpecialTokens: true).unicodeScalars.elementsEqual(sample.decoded_without_special_tokens.unicodeScalars), "\(label) decoded without special tokens")
            }
        }
    }

    @Test("chats render with the model's own template exactly as apply_chat_template renders them, with and without the generation prompt", arguments: ["llama2-legacy", "mistral-v0.3", "llama3", "qwen2.5"])
    func chats(family: String) async throws {
        try await onOwnThread {
            let (tokenizer, expected, chats) = try Self.load(family)
            #expect(!tokenizer.usesDefaultTemplate)
            #expect(expected.chats.count == chats.count && !chats.isEmpty)
            for (messages, wanted) in zip(chats, expected.chats) {
                let conversation = try ChatConversation(json: messages)
                for (prompt, rendered) in [(false, wanted.without_generation_prompt), (true, wanted.with_generation_prompt)] {
                    if let error = rendered.error {
                        #expect { try tokenizer.renderChat(conversation, addGenerationPrompt: prompt) } throws: { ($0 as? TemplateError)?.message == error }
                        continue
                    }
                    let text = try tokenizer.renderChat(conversation, addGenerationPrompt: prompt)
                    #expect(text.unicodeScalars.elementsEqual(rendered.text!.unicodeScalars), "\(family), generation prompt \(prompt):\n\(text.debugDescription)\nwanted\n\(rendered.text!.debugDescription)")
                    #expect(try tokenizer.encodeChat(conversation, addGenerationPrompt: prompt) == rendered.ids!)
                }
            }
        }
    }

    @Test("a chat's loss falls on the assistant's turns and the token that ends each, and nowhere else", arguments: ["llama2-legacy", "mistral-v0.3", "llama3", "qwen2.5"])
    func assistantMask(family: String) async throws {
        try await onOwnThread {
            let (tokenizer, _, _) = try Self.load(family)
            let chat = #"{"messages": [{"role": "user", "content": "What grew?"}, {"role": "assistant", "content": "Revenue grew."}, {"role": "user", "content": "And costs?"}, {"role": "assistant", "content": "  Costs rose 12%. "}]}"#
            let example = try TrainingData.parse(chat, tokenizer: tokenizer, maximumLength: 4096).examples[0]
            // The learned tokens, in runs.
            var runs: [[Int]] = []
            var previousLearned = false
            for (id, label) in zip(example.ids, example.labels) {
                let learned = label != TrainingBatch.ignoredLabel
                if learned { if previousLearned { runs[runs.count - 1].append(id) } else { runs.append([id]) } }
                previousLearned = learned
            }
            let end = tokenizer.eosToken!
            #expect(runs.count == 2, "\(family): \(runs.map { tokenizer.decode($0) })")
            // Templates differ in the spaces they keep around a turn (Llama 2 writes one before
            // its </s>); the words and the closing token are what must be learned.
            let texts = runs.map { tokenizer.decode($0).replacingOccurrences(of: " ", with: "") }
            #expect(texts == ["Revenuegrew.\(end)", "Costsrose12%.\(end)"], "\(family): \(runs.map { tokenizer.decode($0) })")
            #expect(example.ids == (try tokenizer.encodeChat(ChatConversation(json: #"[{"role": "user", "content": "What grew?"}, {"role": "assistant", "content": "Revenue grew."}, {"role": "user", "content": "And costs?"}, {"role": "assistant", "content": "  Costs rose 12%. "}]"#), addGenerationPrompt: false)))
        }
    }

    @Test("text, prompt-completion and conversational prompt-completion lines tokenize as TRL's SFTTrainer tokenizes them", arguments: families)
    func asTRL(family: String) async throws {
        try await onOwnThread {
            let (tokenizer, expected, _) = try Self.load(family)
            let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder(family).appendingPathComponent("expected.json"))) as! [String: Any]
            let lines = (raw["trl"] as! [[String: Any]]).map { String(decoding: try! JSONSerialization.data(withJSONObject: $0["line"]!), as: UTF8.self) }
            #expect(lines.count == expected.trl.count && lines.count >= 2)
            for (line, wanted) in zip(lines, expected.trl) {
                let example = try TrainingData.parse(line, tokenizer: tokenizer, maximumLength: 4096).examples[0]
                #expect(example.ids == wanted.ids, "\(family): \(line)")
                #expect(example.labels == wanted.ids.enumerated().map { $0 < wanted.first_learned ? TrainingBatch.ignoredLabel : $1 }, "\(family): \(line)")
            }
        }
    }

    @Test("a Llama tokenizer whose add_bos_token and add_eos_token disagree with its post-processor adds what Transformers 4's LlamaTokenizerFast adds", arguments: ["llama2-eos-only", "llama2-eos-added"])
    func specialTokenFlags(folder name: String) async throws {
        try await onOwnThread {
            struct Expected: Decodable {
                struct Case: Decodable {
                    var text: String
                    var ids_with_special_tokens: [Int]
                }
                var cases: [Case]
            }
            let folder = Self.folder(name)
            let tokenizer = try ModelTokenizer(folder: folder)
            let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))
            #expect(expected.cases.count == 3)
            for sample in expected.cases {
                #expect(tokenizer.encode(sample.text, addSpecialTokens: true) == sample.ids_with_special_tokens, "\(name): \(sample.text.debugDescription)")
            }
        }
    }

    @Test("a folder without a chat template renders chats as ChatML and says so")
    func chatMLFallback() async throws {
        try await onOwnThread {
            let (tokenizer, _, _) = try Self.load("metaspace-always")
            #expect(tokenizer.usesDefaultTemplate)
            let text = try tokenizer.renderChat(ChatConversation(roleContentPairs: [("user", "Hi")]), addGenerationPrompt: true)
            #expect(text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        }
    }

    @Test("a merge or a token with a combining mark after the space loads, and canonically equivalent tokens stay apart")
    func graphemeClusters() async throws {
        try await onOwnThread {
            let json = #"{"model": {"type": "BPE", "vocab": {"▁": 0, "\u0301": 1, "▁\u0301": 2, "é": 3, "e": 4, "e\u0301": 5}, "merges": ["▁ \u0301", "e \u0301"]}, "added_tokens": []}"#
            let tokenizer = try Tokenizer(data: Data(json.utf8))
            #expect(tokenizer.encode("▁\u{301}") == [2])
            #expect(tokenizer.encode("é") == [3])
            #expect(tokenizer.encode("e\u{301}") == [5])
        }
    }

    @Test("a configuration the engine does not reproduce is refused with the field that holds it")
    func unsupportedConfiguration() async throws {
        try await onOwnThread {
            let cases: [(String, String)] = [
                (#"{"model": {"type": "Unigram", "vocab": []}}"#, "model.type"),
                (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Precompiled"}]}}"#, "normalizer.normalizers[1].type"),
                (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Metaspace", "prepend_scheme": "sometimes"}}"#, "pre_tokenizer.prepend_scheme"),
                (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}}"#, "model.merges[0]"),
            ]
            for (json, field) in cases {
                #expect { try Tokenizer(data: Data(json.utf8)) } throws: { ($0 as? TokenizerError)?.message.contains(field) == true }
            }
            #expect(throws: TemplateError.self) { try ChatTemplate("{% for x in y %}no end") }
            #expect { try ChatTemplate("{% macro m() %}{% endmacro %}") } throws: { ($0 as? TemplateError)?.message.contains("macro") == true }
        }
    }
}
