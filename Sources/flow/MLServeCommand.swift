import ArgumentParser
import FlowCore
import FlowML
import FlowServing
import Foundation
import Hummingbird
import Logging

/// `flow ml serve`: the organisation's own model behind the OpenAI API (docs/ml.md,
/// "Serving"), so that `flow worker openai` with `OPENAI_BASE_URL` pointing here calls it.
struct MLServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model and its LoRA adapters behind the OpenAI API: /v1/chat/completions, /v1/completions, /v1/models.",
        discussion: """
            Each --adapter NAME=DIR answers requests whose "model" is NAME, over the base model loaded once; the base answers to --name \
            (default: its folder's name). POST /v1/load_lora_adapter {"lora_name": …, "lora_path": …} adds one while it runs. It prints \
            "serving: http://HOST:PORT/v1" once it listens.
            """
    )

    @Option(help: "The Hugging Face model folder (config.json, safetensors, tokenizer.json).") var model: String
    @Option(help: "The name the base model answers to (default: its folder's name).") var name: String?
    @Option(parsing: .singleValue, help: "An adapter to serve, as NAME=DIR (a PEFT folder); repeat for more.") var adapter: [String] = []
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port (0: any free one).") var port = 8000
    @Option(help: "Generations that may wait or run before a request is refused with 429 and Retry-After.") var queue = 16
    @Option(help: "The most sequences one decoding step takes together (1: one generation at a time).") var batch = 16

    func validate() throws {
        for entry in adapter where !entry.contains("=") { throw ValidationError("--adapter takes NAME=DIR, got \(entry)") }
        guard queue >= 1 else { throw ValidationError("--queue must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() async throws {
        MLCommand.prepareEngine()
        var logger = Logger(label: "flow.serve")
        logger.logLevel = .notice
        let catalog: ModelCatalog
        do {
            catalog = try ModelCatalog(folder: URL(fileURLWithPath: model), name: name)
            for entry in adapter {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                try catalog.addAdapter(named: parts[0], folder: URL(fileURLWithPath: parts[1]))
            }
        } catch let error as ModelError {
            throw ValidationError(error.message)
        } catch let error as ServingError {
            throw ValidationError(error.message)
        }
        let server = ModelServer(catalog: catalog, capacity: queue, batch: batch, logger: logger)
        let host = self.host
        let application = Application(
            router: server.router(),
            configuration: .init(address: .hostname(host, port: port), serverName: "flow-ml-serve"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                // Written straight to the descriptor: a parent reads it as soon as it listens.
                FileHandle.standardOutput.write(Data("serving: http://\(host):\(port)/v1 (models: \(catalog.names.joined(separator: ", ")))\n".utf8))
            },
            logger: logger
        )
        try await application.runService()
    }
}
