import FlowCore
import FlowDefaultActivities
import FlowML
import FlowRuntime
import Foundation

/// `train_organizational_model`: LoRA fine-tuning of a model folder in the data folder on
/// a JSON-lines dataset (a file in the data folder or a blob id), with the job's
/// checkpoints in `training/<job id>/`. Progress goes to the reply queue as heartbeats. A
/// redelivered job (the worker died) continues from its newest complete checkpoint and
/// ends with the adapter an uninterrupted run would have; a job id that completed is
/// answered from the worker's store without training again.
public struct TrainOrganizationalModelActivity: Activity {
    public typealias Input = TrainOrganizationalModel.Input
    public typealias Output = TrainOrganizationalModel.Output
    public static let name = TrainOrganizationalModel.name
    public static let queue = TrainOrganizationalModel.queue
    public static let retryPolicy = TrainOrganizationalModel.retryPolicy
    public static let startToCloseTimeout = TrainOrganizationalModel.startToCloseTimeout

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        guard !input.jobID.isEmpty, input.jobID.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }), !input.jobID.hasPrefix(".") else {
            throw ActivityFailure.nonRetryable("InvalidInput", "job_id must be letters, digits, '-', '_', '.' or ':', got '\(input.jobID)'")
        }
        let (model, tokenizer) = try MLInputs.model(input.baseModel, in: dataFolder)
        let settings = try MLInputs.settings(lora: input.lora, training: input.training)
        let examples = try MLInputs.examples(input.dataset, in: dataFolder, tokenizer: tokenizer, maximumLength: settings.maximumLength)
        let relativeOutput = "training/\(input.jobID.replacingOccurrences(of: ":", with: "_"))"
        let output = dataFolder.root.appendingPathComponent(relativeOutput)
        let trainer: LoRATrainer
        do {
            trainer = try LoRATrainer(model: model, examples: examples, settings: settings, output: output, resume: true)
        } catch let error as ModelError {
            throw ActivityFailure.nonRetryable("InvalidTrainingRequest", error.message)
        }
        if trainer.trainerState.globalStep > 0 {
            context.logger.info("resuming a training job from its newest checkpoint", metadata: ["job.id": "\(input.jobID)", "step": "\(trainer.trainerState.globalStep)"])
        }
        // The trainer is synchronous and owns the cores: run it off the cooperative pool,
        // and hand its progress back as heartbeats.
        let progressStream = AsyncStream<TrainingProgress>.makeStream()
        let reporter = Task {
            for await progress in progressStream.stream {
                await context.heartbeat(Progress(progress, output: relativeOutput))
            }
        }
        let cancelled = CancellationFlag()
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let thread = Thread {
                        do {
                            try trainer.train(progress: { progressStream.continuation.yield($0) }, shouldStop: { cancelled.isSet })
                            continuation.resume()
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    }
                    thread.stackSize = 8 << 20
                    thread.start()
                }
            } onCancel: {
                cancelled.set()
            }
        } catch let error as ModelError {
            progressStream.continuation.finish()
            throw ActivityFailure.nonRetryable("TrainingFailed", error.message)
        }
        progressStream.continuation.finish()
        await reporter.value
        if cancelled.isSet { throw CancellationError() }
        let losses = trainer.trainerState.losses
        return Output(jobID: input.jobID, adapterPath: relativeOutput, steps: trainer.trainerState.globalStep, finalLoss: Double(losses.last ?? 0))
    }

    struct Progress: Encodable {
        var step: Int
        var maxSteps: Int
        var loss: Float
        var learningRate: Float
        var tokensPerSecond: Double
        var checkpoint: String?

        init(_ progress: TrainingProgress, output: String) {
            step = progress.step
            maxSteps = progress.maximumSteps
            loss = progress.loss
            learningRate = progress.learningRate
            tokensPerSecond = progress.tokensPerSecond
            checkpoint = progress.checkpoint.map { "\(output)/\($0.lastPathComponent)" }
        }

        enum CodingKeys: String, CodingKey {
            case step
            case maxSteps = "max_steps"
            case loss
            case learningRate = "learning_rate"
            case tokensPerSecond = "tokens_per_second"
            case checkpoint
        }
    }
}

/// `evaluate_model`: loss and perplexity of a base model with an adapter on a dataset.
public struct EvaluateModelActivity: Activity {
    public typealias Input = EvaluateModel.Input
    public typealias Output = EvaluateModel.Output
    public static let name = EvaluateModel.name
    public static let queue = EvaluateModel.queue
    public static let startToCloseTimeout = EvaluateModel.startToCloseTimeout

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let (model, tokenizer) = try MLInputs.model(input.baseModel, in: dataFolder)
        let examples = try MLInputs.examples(input.dataset, in: dataFolder, tokenizer: tokenizer, maximumLength: 512)
        let adapterFolder = try dataFolder.resolve(input.adapterPath)
        do {
            let adapter = try LoRAAdapter(folder: adapterFolder)
            let result = try model.evaluate(examples, adapter: adapter)
            return Output(jobID: input.jobID, evalLoss: result.loss, perplexity: result.perplexity, samples: examples.count)
        } catch let error as ModelError {
            throw ActivityFailure.nonRetryable("InvalidEvaluationRequest", error.message)
        }
    }
}

/// Reading the ML activities' inputs from the data folder, with errors that name the problem.
enum MLInputs {
    static func model(_ path: String, in dataFolder: DataFolder) throws -> (LlamaModel, Tokenizer) {
        let folder = try dataFolder.resolve(path)
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path) else {
            throw ActivityFailure.nonRetryable("ModelNotFound", "no model folder with a config.json at \(path) in the data folder")
        }
        do {
            return (try LlamaModel(folder: folder), try Tokenizer(contentsOf: folder.appendingPathComponent("tokenizer.json")))
        } catch let error as ModelError {
            throw ActivityFailure.nonRetryable("InvalidModel", "\(path): \(error.message)")
        } catch let error as SafeTensorsError {
            throw ActivityFailure.nonRetryable("InvalidModel", "\(path): \(error.message)")
        } catch let error as TokenizerError {
            throw ActivityFailure.nonRetryable("InvalidModel", "\(path)/tokenizer.json: \(error.message)")
        }
    }

    static func examples(_ dataset: String, in dataFolder: DataFolder, tokenizer: Tokenizer, maximumLength: Int) throws -> [TokenizedExample] {
        let file: URL
        if dataset.hasPrefix("sha256:") {
            file = try BlobStore(folder: dataFolder.blobs).path(of: dataset)
        } else {
            file = try dataFolder.resolve(dataset)
        }
        do {
            return try TrainingData.load(file, tokenizer: tokenizer, maximumLength: maximumLength)
        } catch let error as ModelError {
            throw ActivityFailure.nonRetryable("InvalidDataset", "\(dataset): \(error.message)")
        }
    }

    /// The trainer's settings: `training` and `lora` objects with Transformers' and PEFT's names.
    static func settings(lora: JSONText?, training: JSONText?) throws -> TrainingSettings {
        var merged: [String: Any] = [:]
        for part in [training, lora].compactMap({ $0 }) {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(part.text.utf8))) as? [String: Any] else {
                throw ActivityFailure.nonRetryable("InvalidInput", "'lora' and 'training' must be JSON objects")
            }
            merged.merge(object) { _, new in new }
        }
        do {
            var settings = try JSONDecoder().decode(TrainingSettings.self, from: JSONSerialization.data(withJSONObject: merged))
            if merged["max_steps"] == nil { settings.maximumSteps = 30 }
            return settings
        } catch {
            throw ActivityFailure.nonRetryable("InvalidInput", "the training settings do not decode: \(error)")
        }
    }
}

final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// The ML actor's activities, ready to register in its worker.
public enum MLActivities {
    public static func registry(dataFolder: DataFolder) -> ActivityRegistry {
        var registry = ActivityRegistry()
        registry.register(TrainOrganizationalModelActivity(dataFolder: dataFolder))
        registry.register(EvaluateModelActivity(dataFolder: dataFolder))
        return registry
    }
}
