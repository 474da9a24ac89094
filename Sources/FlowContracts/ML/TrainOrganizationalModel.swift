import FlowCore
import Foundation

/// `train_organizational_model` on `ml-queue`: LoRA fine-tuning of a local base model on
/// a JSON-lines dataset, with checkpoints streamed to disk and progress in heartbeats.
public enum TrainOrganizationalModel: ActivityDeclaration {
    public static let name = "train_organizational_model"
    public static let queue = WorkQueue.ml
    public static let startToCloseTimeout: Duration = .seconds(6 * 3600)
    public static let retryPolicy = RetryPolicy(initialInterval: .seconds(5), maximumAttempts: 3)

    public struct Input: Codable, Sendable, Equatable {
        public var jobID: String
        /// The base model folder, relative to the data folder (`models/qwen2-0.5b`).
        public var baseModel: String
        /// A JSON-lines file relative to the data folder, or a blob id.
        public var dataset: String
        public var lora: JSONText?
        public var training: JSONText?

        public init(jobID: String, baseModel: String, dataset: String, lora: JSONText? = nil, training: JSONText? = nil) {
            self.jobID = jobID
            self.baseModel = baseModel
            self.dataset = dataset
            self.lora = lora
            self.training = training
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var jobID: String
        /// The PEFT adapter folder (`adapter_config.json`, `adapter_model.safetensors`).
        public var adapterPath: String
        public var steps: Int
        public var finalLoss: Double
        /// The lowest training loss of any step.
        public var bestLoss: Double?
        /// Training tokens per second, averaged over the steps this job ran.
        public var tokensPerSecond: Double?
        /// Seconds spent training, over every delivery that worked on the job.
        public var trainingSeconds: Double?

        public init(jobID: String, adapterPath: String, steps: Int, finalLoss: Double, bestLoss: Double? = nil, tokensPerSecond: Double? = nil, trainingSeconds: Double? = nil) {
            self.jobID = jobID
            self.adapterPath = adapterPath
            self.steps = steps
            self.finalLoss = finalLoss
            self.bestLoss = bestLoss
            self.tokensPerSecond = tokensPerSecond
            self.trainingSeconds = trainingSeconds
        }
    }
}

/// `evaluate_model` on `ml-queue`: the loss and perplexity of a base model with an
/// adapter on held-out text.
public enum EvaluateModel: ActivityDeclaration {
    public static let name = "evaluate_model"
    public static let queue = WorkQueue.ml
    public static let startToCloseTimeout: Duration = .seconds(3600)

    public struct Input: Codable, Sendable, Equatable {
        public var jobID: String
        public var baseModel: String
        /// The adapter to evaluate; without one, the base model alone is.
        public var adapterPath: String?
        public var dataset: String

        public init(jobID: String, baseModel: String, adapterPath: String?, dataset: String) {
            self.jobID = jobID
            self.baseModel = baseModel
            self.adapterPath = adapterPath
            self.dataset = dataset
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var jobID: String
        /// With the adapter, when there is one.
        public var evalLoss: Double
        public var perplexity: Double
        public var samples: Int
        /// Of the base model alone, for comparison.
        public var baseEvalLoss: Double?
        public var basePerplexity: Double?

        public init(jobID: String, evalLoss: Double, perplexity: Double, samples: Int, baseEvalLoss: Double? = nil, basePerplexity: Double? = nil) {
            self.jobID = jobID
            self.evalLoss = evalLoss
            self.perplexity = perplexity
            self.samples = samples
            self.baseEvalLoss = baseEvalLoss
            self.basePerplexity = basePerplexity
        }
    }
}
