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
        subcommands: [MLTrain.self, MLEval.self, MLGenerate.self, Tokenize.self, MLInitModel.self, Kernels.self]
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
            abstract: "Text on standard input to token ids (a JSON array) on standard output; with --decode the other way."
        )

        @Option(help: "A Hugging Face tokenizer.json (BPE: byte-level or Metaspace with byte fallback).")
        var tokenizer: String

        @Flag(help: "Read a JSON array of token ids and print their text.")
        var decode = false

        func run() async throws {
            let tokenizer: Tokenizer
            do {
                tokenizer = try Tokenizer(contentsOf: URL(fileURLWithPath: self.tokenizer))
            } catch {
                throw ValidationError("\(error)")
            }
            let input = FileHandle.standardInput.readDataToEndOfFile()
            if decode {
                guard let ids = try? JSONDecoder().decode([Int].self, from: input) else {
                    throw ValidationError("--decode reads a JSON array of token ids, such as [791, 4580]")
                }
                print(tokenizer.decode(ids), terminator: "")
            } else {
                let ids = tokenizer.encode(String(decoding: input, as: UTF8.self))
                print(String(decoding: try JSONEncoder().encode(ids), as: UTF8.self))
            }
        }
    }
}
