/// Declarations of the activities the ML and OpenAI actors run, so workflows and the
/// command line can call them without linking their code (which needs OpenBLAS, model
/// files or an API key). Their implementations live with their actors.

/// `analyze_document_content` on `openai-queue`: a chat model reads a document's text
/// and returns a summary and its topics.
public enum AnalyzeDocumentContent: ActivityDeclaration {
    public static let name = "analyze_document_content"
    public static let queue = WorkQueue.openai
    public static let startToCloseTimeout: Duration = .seconds(120)

    public struct Input: Codable, Sendable, Equatable {
        public var documentID: String
        public var text: String
        /// The chat model; the worker's default when absent.
        public var model: String?

        public init(documentID: String, text: String, model: String? = nil) {
            self.documentID = documentID
            self.text = text
            self.model = model
        }

        enum CodingKeys: String, CodingKey {
            case documentID = "document_id"
            case text, model
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var documentID: String
        public var summary: String
        public var topics: [String]
        public var model: String
        public var promptTokens: Int
        public var completionTokens: Int
        public var costUSD: Double

        public init(documentID: String, summary: String, topics: [String], model: String, promptTokens: Int, completionTokens: Int, costUSD: Double) {
            self.documentID = documentID
            self.summary = summary
            self.topics = topics
            self.model = model
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
            self.costUSD = costUSD
        }

        enum CodingKeys: String, CodingKey {
            case documentID = "document_id"
            case summary, topics, model
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case costUSD = "cost_usd"
        }
    }
}

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

        enum CodingKeys: String, CodingKey {
            case jobID = "job_id"
            case baseModel = "base_model"
            case dataset, lora, training
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var jobID: String
        /// The PEFT adapter folder (`adapter_config.json`, `adapter_model.safetensors`).
        public var adapterPath: String
        public var steps: Int
        public var finalLoss: Double

        public init(jobID: String, adapterPath: String, steps: Int, finalLoss: Double) {
            self.jobID = jobID
            self.adapterPath = adapterPath
            self.steps = steps
            self.finalLoss = finalLoss
        }

        enum CodingKeys: String, CodingKey {
            case jobID = "job_id"
            case adapterPath = "adapter_path"
            case steps
            case finalLoss = "final_loss"
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
        public var adapterPath: String
        public var dataset: String

        public init(jobID: String, baseModel: String, adapterPath: String, dataset: String) {
            self.jobID = jobID
            self.baseModel = baseModel
            self.adapterPath = adapterPath
            self.dataset = dataset
        }

        enum CodingKeys: String, CodingKey {
            case jobID = "job_id"
            case baseModel = "base_model"
            case adapterPath = "adapter_path"
            case dataset
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var jobID: String
        public var evalLoss: Double
        public var perplexity: Double
        public var samples: Int

        public init(jobID: String, evalLoss: Double, perplexity: Double, samples: Int) {
            self.jobID = jobID
            self.evalLoss = evalLoss
            self.perplexity = perplexity
            self.samples = samples
        }

        enum CodingKeys: String, CodingKey {
            case jobID = "job_id"
            case evalLoss = "eval_loss"
            case perplexity, samples
        }
    }
}
