import FlowCore
import ArgumentParser
import FlowML
import Foundation

/// `flow ml`: the ML engine without a broker.
struct MLCommand: AsyncParsableCommand {
    /// Every `flow ml` command multiplies matrices: give OpenBLAS its best kernels first.
    static func prepareEngine() { EngineEnvironment.relaunchIfNeeded() }

    static let configuration = CommandConfiguration(
        commandName: "ml",
        abstract: "Use the ML engine directly, without a broker.",
        subcommands: [MLTrain.self, MLEval.self, MLGenerate.self, MLServe.self, Tokenize.self, MLInitModel.self, Kernels.self]
    )

    struct Kernels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the OpenBLAS kernel family the engine runs on (after choosing the best this CPU has) and its threads."
        )

        func run() async throws {
            MLCommand.prepareEngine()
            print(OpenBLASKernels.coreName)
            FileHandle.standardError.write(Data("threads: \(ComputeThreads.count)\n".utf8))
        }
    }

    struct Tokenize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Text on standard input to token ids (a JSON array) on standard output; with --decode the other way, with --chat a chat rendered by the model's template.",
            discussion: "Encodes as tokenizers' encode(text, add_special_tokens=...); --chat reads a JSON array of {\"role\", \"content\"} messages and prints {\"text\": ..., \"ids\": [...]}, as apply_chat_template renders and tokenizes it."
        )

        @Option(help: "A Hugging Face model folder: its tokenizer.json and tokenizer_config.json.")
        var model: String?

        @Option(help: "A tokenizer.json alone (no special-token settings or chat template).")
        var tokenizer: String?

        @Flag(help: "Add the tokenizer's special tokens (BOS, EOS) as its post-processor does.")
        var addSpecialTokens = false

        @Flag(help: "Read a JSON array of messages and render it with the model's chat template.")
        var chat = false

        @Flag(help: "With --chat: end with the template's prompt for the assistant's reply.")
        var addGenerationPrompt = false

        @Flag(help: "Read a JSON array of token ids and print their text.")
        var decode = false

        func validate() throws {
            guard (model == nil) != (tokenizer == nil) else { throw ValidationError("give --model DIR or --tokenizer FILE") }
            if addGenerationPrompt, !chat { throw ValidationError("--add-generation-prompt goes with --chat") }
        }

        func run() async throws {
            let loaded: ModelTokenizer
            do {
                loaded = try loadTokenizer(model: model.map { URL(fileURLWithPath: $0) }, file: tokenizer)
            } catch {
                throw ValidationError("\(error)")
            }
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            if decode {
                guard let ids = try? FlowJSON.decode([Int].self, from: input) else {
                    throw ValidationError("--decode reads a JSON array of token ids, such as [791, 4580]")
                }
                print(loaded.decode(ids), terminator: "")
            } else if chat {
                struct Rendered: Encodable {
                    var text: String
                    var ids: [Int]
                }
                do {
                    let conversation = try ChatConversation(json: input)
                    let text = try loaded.renderChat(conversation, addGenerationPrompt: addGenerationPrompt)
                    print(try FlowJSON.encodeText(Rendered(text: text, ids: loaded.tokenizer.encode(text))))
                } catch let error as TemplateError {
                    throw ValidationError(error.message)
                }
            } else {
                let ids = loaded.encode(input, addSpecialTokens: addSpecialTokens)
                print(try FlowJSON.encodeText(ids))
            }
        }
    }
}

/// A model folder's tokenizer and its configuration, or a `tokenizer.json` named alone.
func loadTokenizer(model folder: URL?, file: String?) throws -> ModelTokenizer {
    if let file { return ModelTokenizer(tokenizer: try Tokenizer(contentsOf: URL(fileURLWithPath: file))) }
    guard let folder else { throw ValidationError("give a model folder or a tokenizer.json") }
    return try ModelTokenizer(folder: folder)
}
