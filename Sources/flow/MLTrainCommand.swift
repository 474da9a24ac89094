import FlowCore
import ArgumentParser
import FlowML
import Foundation

/// `flow ml train` and `flow ml eval`: LoRA fine-tuning and evaluation without a broker,
/// the same code the ML actor runs.
struct MLTrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune a LoRA adapter on a JSON-lines dataset, with checkpoints in the output folder.",
        discussion: "The dataset holds {\"text\": ...}, {\"prompt\": ..., \"completion\": ...} or {\"messages\": [...]} lines. --resume continues the newest complete checkpoint."
    )

    @Option(help: "The Hugging Face model folder (config.json, safetensors).") var model: String
    @Option(help: "The dataset, JSON lines.") var data: String
    @Option(help: "Where checkpoints and the final adapter go.") var output: String
    @Option(help: "The tokenizer.json (default: the model folder's).") var tokenizer: String?
    @Option(help: "Optimizer steps.") var steps = 100
    @Option(help: "LoRA rank.") var rank = 8
    @Option(help: "LoRA alpha.") var alpha: Float = 16
    @Option(help: "Modules to adapt, comma-separated, or all-linear.") var targetModules = "q_proj,v_proj"
    @Option(name: .customLong("lr"), help: "Peak learning rate.") var learningRate: Float = 1e-3
    @Option(help: "Warm-up steps.") var warmupSteps = 0
    @Option(help: "Sequences per micro-batch.") var batchSize = 4
    @Option(help: "Micro-batches per optimizer step.") var gradientAccumulation = 1
    @Option(help: "Longest sequence, in tokens.") var maxLength = 256
    @Option(help: "Checkpoint every this many steps.") var saveSteps = 10
    @Option(help: "Checkpoints kept.") var keepCheckpoints = 2
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Flag(help: "Continue from the newest complete checkpoint in the output folder.") var resume = false
    @Option(help: "Threads for matrix products (default: $FLOW_ML_THREADS, then one per core).") var threads: Int?

    func run() async throws {
        MLCommand.prepareEngine()
        if let threads = threads ?? ProcessInfo.processInfo.environment["FLOW_ML_THREADS"].flatMap(Int.init) { ComputeThreads.count = threads }
        try withReadableErrors {
            let (model, examples) = try loadModelAndData(model: self.model, tokenizer: tokenizer, data: data, maximumLength: maxLength)
            var settings = TrainingSettings()
            settings.rank = rank
            settings.alpha = alpha
            settings.targetModules = targetModules.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            settings.learningRate = learningRate
            settings.warmupSteps = warmupSteps
            settings.maximumSteps = steps
            settings.batchSize = batchSize
            settings.gradientAccumulation = gradientAccumulation
            settings.maximumLength = maxLength
            settings.checkpointEvery = saveSteps
            settings.keepCheckpoints = keepCheckpoints
            settings.seed = seed
            let trainer = try LoRATrainer(model: model, examples: examples, settings: settings, output: URL(fileURLWithPath: output), resume: resume)
            if trainer.trainerState.globalStep > 0 { print("resuming at step \(trainer.trainerState.globalStep)") }
            let started = Date()
            let firstStep = trainer.trainerState.globalStep
            try trainer.train(progress: { progress in
                let done = progress.step - firstStep
                let eta = done > 0 ? Date().timeIntervalSince(started) / Double(done) * Double(progress.maximumSteps - progress.step) : 0
                let bar = String(repeating: "#", count: 20 * progress.step / progress.maximumSteps).padding(toLength: 20, withPad: ".", startingAt: 0)
                print(String(format: "[%@] step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %.0fs", bar, progress.step, progress.maximumSteps, progress.loss, progress.learningRate, progress.tokensPerSecond, eta))
                if let checkpoint = progress.checkpoint { print("checkpoint \(checkpoint.lastPathComponent)") }
            })
            print("adapter written to \(output)")
        }
    }
}

struct MLEval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Loss and perplexity of a model on a JSON-lines dataset, without and with an adapter."
    )

    @Option(help: "The Hugging Face model folder.") var model: String
    @Option(help: "The dataset, JSON lines.") var data: String
    @Option(help: "A PEFT adapter folder.") var adapter: String?
    @Option(help: "The tokenizer.json (default: the model folder's).") var tokenizer: String?
    @Option(help: "Longest sequence, in tokens.") var maxLength = 256

    func run() async throws {
        MLCommand.prepareEngine()
        try withReadableErrors {
            let (model, examples) = try loadModelAndData(model: self.model, tokenizer: tokenizer, data: data, maximumLength: maxLength)
            let base = try model.evaluate(examples)
            var result: [String: Double] = ["base_loss": base.loss, "base_perplexity": base.perplexity]
            if let adapter {
                let adapted = try model.evaluate(examples, adapter: try LoRAAdapter(folder: URL(fileURLWithPath: adapter)))
                result["adapter_loss"] = adapted.loss
                result["adapter_perplexity"] = adapted.perplexity
            }
            print(try FlowJSON.encodeText(result))
        }
    }
}

struct MLGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt with a model, with or without an adapter, printing tokens as they come.",
        discussion: "Greedy by default (--temperature 0); --temperature and --top-p sample, reproducibly by --seed. Stops at the model's eos_token_id or after --max-new-tokens."
    )

    @Option(help: "The Hugging Face model folder.") var model: String
    @Option(help: "A PEFT adapter folder.") var adapter: String?
    @Option(help: "The tokenizer.json (default: the model folder's).") var tokenizer: String?
    @Option(help: "The text to continue (encoded with the tokenizer's special tokens).") var prompt: String?
    @Option(help: "A JSON array of chat messages to answer, rendered with the model's chat template and its generation prompt.") var messages: String?
    @Option(help: "Tokens to generate at most.") var maxNewTokens = 64
    @Option(help: "0 is greedy; above 0 samples.") var temperature: Float = 0
    @Option(help: "Nucleus sampling: the probability mass to draw from.") var topP: Float = 1
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0

    func run() async throws {
        MLCommand.prepareEngine()
        try withReadableErrors {
            let folder = URL(fileURLWithPath: model)
            let loaded = try LlamaModel(folder: folder)
            let tokenizer = try loadTokenizer(model: folder, file: self.tokenizer)
            let adapter = try self.adapter.map { try LoRAAdapter(folder: URL(fileURLWithPath: $0)) }
            let settings = GenerationSettings(
                maximumNewTokens: maxNewTokens, temperature: temperature, topP: topP, seed: seed,
                stopTokens: LlamaModel.endOfSequenceTokens(in: folder)
            )
            let started = Date()
            var tokens: [Int] = []
            var printed = ""
            let promptIDs: [Int]
            if let messages {
                promptIDs = try tokenizer.encodeChat(ChatConversation(json: messages), addGenerationPrompt: true)
            } else if let prompt {
                promptIDs = tokenizer.encode(prompt, addSpecialTokens: true)
            } else {
                throw ValidationError("give --prompt TEXT or --messages JSON")
            }
            let generation = try loaded.generate(prompt: promptIDs, settings: settings, adapter: adapter) { token in
                // Decoded as a whole each time: one token can be half of a character.
                tokens.append(token)
                let text = tokenizer.decode(tokens, skipSpecialTokens: true)
                if text.hasPrefix(printed), !text.hasSuffix("\u{FFFD}") {
                    FileHandle.standardOutput.write(Data(text.dropFirst(printed.count).utf8))
                    printed = text
                }
                return true
            }
            let rest = tokenizer.decode(generation.tokens, skipSpecialTokens: true)
            if rest.hasPrefix(printed) { print(rest.dropFirst(printed.count)) } else { print() }
            let seconds = Date().timeIntervalSince(started)
            FileHandle.standardError.write(Data(String(format: "%d tokens, %.1f tokens/s, finish: %@\n", generation.tokens.count, Double(generation.tokens.count) / max(seconds, 1e-9), generation.finishReason.rawValue).utf8))
        }
    }
}

/// A model folder, its tokenizer (the folder's unless named) and a tokenized dataset.
private func loadModelAndData(model: String, tokenizer: String?, data: String, maximumLength: Int) throws -> (LlamaModel, [TokenizedExample]) {
    let folder = URL(fileURLWithPath: model)
    let loaded = try LlamaModel(folder: folder)
    guard maximumLength <= loaded.configuration.contextLength else {
        throw ValidationError("--max-length \(maximumLength) is longer than the model's context of \(loaded.configuration.contextLength) tokens: give at most that")
    }
    let tokenizer = try loadTokenizer(model: folder, file: tokenizer)
    let dataset = try TrainingData.load(URL(fileURLWithPath: data), tokenizer: tokenizer, maximumLength: maximumLength)
    if dataset.renderedChatsAsChatML {
        FileHandle.standardError.write(Data("the model folder has no chat_template in tokenizer_config.json: chats are rendered as ChatML\n".utf8))
    }
    return (loaded, dataset.examples)
}

/// Runs `body`, turning the engine's errors into the command line's.
private func withReadableErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ModelError {
        throw ValidationError(error.message)
    } catch let error as TokenizerError {
        throw ValidationError(error.message)
    } catch let error as TemplateError {
        throw ValidationError(error.message)
    } catch let error as SafeTensorsError {
        throw ValidationError(error.message)
    }
}

struct MLInitModel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-model",
        abstract: "Write a small random Llama model folder with a tokenizer, for demonstrations and tests on machines that download no models."
    )

    @Option(help: "The folder to write.") var output: String
    @Option(help: "The tokenizer.json to ship with it; its vocabulary sets the model's.") var tokenizer: String
    @Option(help: "Hidden size.") var hidden = 64
    @Option(help: "Layers.") var layers = 2

    func run() async throws {
        let tokenizerURL = URL(fileURLWithPath: tokenizer)
        guard let object = try? JSONValue(contentsOf: tokenizerURL), let vocabulary = object["model"]?["vocab"]?.objectValue else {
            throw ValidationError("\(tokenizer) is not a tokenizer.json with a vocabulary")
        }
        let added = (object["added_tokens"]?.arrayValue ?? []).compactMap { $0["id"]?.intValue }
        var shape = ModelFactory.Shape(vocabulary: max(vocabulary.count, (added.max() ?? 0) + 1))
        shape.hidden = hidden
        shape.intermediate = hidden * 2
        shape.layers = layers
        try ModelFactory.writeRandomLlama(to: URL(fileURLWithPath: output), shape: shape, tokenizer: tokenizerURL)
        print("wrote a random Llama model (vocabulary \(shape.vocabulary), hidden \(hidden), \(layers) layers) to \(output)")
    }
}
