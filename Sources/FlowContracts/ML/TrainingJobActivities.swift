import FlowCore
import Foundation

/// A training job as the ML actor records it in `training/<job>/job.json` and as the job
/// management activities report it.
public struct TrainingJob: Codable, Sendable, Equatable {
    /// Where a job stands. `running` means a worker holds the job's lock now; a job whose
    /// worker died is reported `checkpointed` (or `queued` before its first checkpoint)
    /// until its message is redelivered.
    public enum State: String, Codable, Sendable, CaseIterable {
        case queued, running, checkpointed, completed, failed, cancelled

        /// Whether the job is over: nothing more will train it.
        public var isFinal: Bool { self == .completed || self == .failed || self == .cancelled }
    }

    public var jobID: String
    public var state: State
    public var request: TrainOrganizationalModel.Input
    /// The request message that started the job (its idempotency key).
    public var messageID: String?
    /// The worker training it now, or the last one that did.
    public var workerID: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var step: Int
    public var maximumSteps: Int?
    public var loss: Double?
    public var bestLoss: Double?
    public var learningRate: Double?
    public var tokensPerSecond: Double?
    /// Tokens trained on and seconds spent training, over every delivery.
    public var tokens: Int
    public var trainingSeconds: Double
    /// How many deliveries of the job's message have trained it.
    public var deliveries: Int
    /// Complete checkpoints on disk, oldest first, relative to the data folder, and whether
    /// `cancel_training_job` asked the job to stop: both read from the job's folder when
    /// the job is reported, not kept in its record.
    public var checkpoints: [String]
    public var cancelRequested: Bool
    /// The loss of every step trained so far, in order. `get_training_job` reports it;
    /// `list_training_jobs` leaves it out to keep the list small.
    public var lossHistory: [Double]?
    public var result: TrainOrganizationalModel.Output?
    public var error: ActivityFailure?

    public init(jobID: String, state: State, request: TrainOrganizationalModel.Input, createdAt: Date = Date()) {
        self.jobID = jobID
        self.state = state
        self.request = request
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.step = 0
        self.tokens = 0
        self.trainingSeconds = 0
        self.deliveries = 0
        self.checkpoints = []
        self.cancelRequested = false
    }

    enum CodingKeys: String, CodingKey {
        case jobID, state, request, messageID, workerID, createdAt, updatedAt, step, loss, bestLoss, learningRate, tokensPerSecond, tokens, trainingSeconds, deliveries, checkpoints, cancelRequested, lossHistory, result, error
        case maximumSteps = "maxSteps"
    }
}

/// `list_training_jobs` on `ml-queue`: the jobs in the shared training folder, newest
/// change first.
public enum ListTrainingJobs: ActivityDeclaration {
    public static let name = "list_training_jobs"
    public static let queue = WorkQueue.ml

    public struct Input: Codable, Sendable, Equatable {
        /// Only jobs in this state.
        public var state: TrainingJob.State?
        /// At most this many (default 100).
        public var limit: Int?

        public init(state: TrainingJob.State? = nil, limit: Int? = nil) {
            self.state = state
            self.limit = limit
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var jobs: [TrainingJob]
        public init(jobs: [TrainingJob]) { self.jobs = jobs }
    }
}

/// `get_training_job` on `ml-queue`: one job, with its progress and checkpoints.
public enum GetTrainingJob: ActivityDeclaration {
    public static let name = "get_training_job"
    public static let queue = WorkQueue.ml

    public struct Input: Codable, Sendable, Equatable {
        public var jobID: String
        public init(jobID: String) { self.jobID = jobID }
    }

    public typealias Output = TrainingJob
}

/// `cancel_training_job` on `ml-queue`: asks a job to stop. A running job stops after its
/// current step, writes a final checkpoint and its request is answered with a
/// `Cancelled` failure; a job waiting in the queue is answered so when it is delivered.
/// Cancelling a finished job changes nothing and reports it as it is.
public enum CancelTrainingJob: ActivityDeclaration {
    public static let name = "cancel_training_job"
    public static let queue = WorkQueue.ml

    public typealias Input = GetTrainingJob.Input
    public typealias Output = TrainingJob
}

/// `generate_text` on `ml-queue`: text from a base model, with or without an adapter,
/// for a quick look at what an adapter learned.
public enum GenerateText: ActivityDeclaration {
    public static let name = "generate_text"
    public static let queue = WorkQueue.ml
    public static let startToCloseTimeout: Duration = .seconds(1800)

    public struct Input: Codable, Sendable, Equatable {
        public var baseModel: String
        /// A PEFT adapter folder relative to the data folder (a job's output or checkpoint).
        public var adapterPath: String?
        /// A text to continue (encoded with the tokenizer's special tokens, a BOS say);
        /// give this or `messages`.
        public var prompt: String?
        /// A chat to answer, rendered with the model's chat template and its generation
        /// prompt, as `apply_chat_template(messages, add_generation_prompt=True)`.
        public var messages: [Message]?
        /// Tokens to generate at most (default 64).
        public var maximumNewTokens: Int?
        /// 0 (the default) picks the likeliest token each step.
        public var temperature: Double?
        /// Nucleus sampling: sample from the smallest set of tokens whose probability
        /// reaches this (default 1, all tokens).
        public var topP: Double?
        public var seed: UInt64?

        /// One turn of a chat.
        public struct Message: Codable, Sendable, Equatable {
            public var role: String
            public var content: String

            public init(role: String, content: String) {
                self.role = role
                self.content = content
            }
        }

        public init(baseModel: String, adapterPath: String? = nil, prompt: String? = nil, messages: [Message]? = nil, maximumNewTokens: Int? = nil, temperature: Double? = nil, topP: Double? = nil, seed: UInt64? = nil) {
            self.baseModel = baseModel
            self.adapterPath = adapterPath
            self.prompt = prompt
            self.messages = messages
            self.maximumNewTokens = maximumNewTokens
            self.temperature = temperature
            self.topP = topP
            self.seed = seed
        }

        enum CodingKeys: String, CodingKey {
            case baseModel, adapterPath, prompt, messages, temperature, topP, seed
            case maximumNewTokens = "maxNewTokens"
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        /// The generated text, without the prompt.
        public var text: String
        public var promptTokens: Int
        public var generatedTokens: Int
        /// Why generation stopped: `eos` or `length`.
        public var finishReason: String
        public var tokensPerSecond: Double

        public init(text: String, promptTokens: Int, generatedTokens: Int, finishReason: String, tokensPerSecond: Double) {
            self.text = text
            self.promptTokens = promptTokens
            self.generatedTokens = generatedTokens
            self.finishReason = finishReason
            self.tokensPerSecond = tokensPerSecond
        }
    }
}
