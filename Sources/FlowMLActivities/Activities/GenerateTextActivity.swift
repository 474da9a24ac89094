import FlowContracts
import FlowCore
import FlowML
import FlowRuntime
import Foundation

/// `generate_text`: a base model, with or without an adapter, continues a prompt.
public struct GenerateTextActivity: DeclaredActivity {
    public typealias Declaration = GenerateText

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let maximumNewTokens = input.maximumNewTokens ?? 64
        guard maximumNewTokens <= 4096 else {
            throw ActivityFailure.nonRetryable(.invalidInput, "max_new_tokens is at most 4096, got \(maximumNewTokens)")
        }
        guard (input.prompt == nil) != (input.messages == nil) else {
            throw ActivityFailure.nonRetryable(.invalidInput, "give either prompt (a text to continue) or messages (a chat to answer), not both or neither")
        }
        let cancelled = CancellationFlag()
        let output = try await withTaskCancellationHandler {
            try await ComputeThread.run { [dataFolder] in
                let (model, tokenizer) = try MLInputs.model(input.baseModel, in: dataFolder)
                let adapter = try input.adapterPath.map { try MLInputs.adapter($0, in: dataFolder) }
                let settings = GenerationSettings(
                    maximumNewTokens: maximumNewTokens, temperature: Float(input.temperature ?? 0), topP: Float(input.topP ?? 1), seed: input.seed ?? 0,
                    stopTokens: LlamaModel.endOfSequenceTokens(in: try dataFolder.resolve(input.baseModel))
                )
                let prompt: [Int]
                if let messages = input.messages {
                    do {
                        prompt = try tokenizer.encodeChat(ChatConversation(roleContentPairs: messages.map { ($0.role, $0.content) }), addGenerationPrompt: true)
                    } catch let error as TemplateError {
                        throw ActivityFailure.nonRetryable(.invalidInput, "the model's chat template refused the messages: \(error.message)")
                    }
                } else {
                    prompt = tokenizer.encode(input.prompt ?? "", addSpecialTokens: true)
                }
                let started = ContinuousClock.now
                do {
                    let generation = try model.generate(prompt: prompt, settings: settings, adapter: adapter) { _ in !cancelled.isSet }
                    let elapsed = ContinuousClock.now - started
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                    return Output(
                        text: tokenizer.decode(generation.tokens, skipSpecialTokens: true), promptTokens: prompt.count,
                        generatedTokens: generation.tokens.count, finishReason: generation.finishReason.rawValue,
                        tokensPerSecond: Double(generation.tokens.count) / max(seconds, 1e-9)
                    )
                } catch let error as ModelError {
                    throw ActivityFailure.nonRetryable(.invalidGenerationRequest, error.message)
                }
            }
        } onCancel: {
            cancelled.set()
        }
        try Task.checkCancellation()
        return output
    }
}
