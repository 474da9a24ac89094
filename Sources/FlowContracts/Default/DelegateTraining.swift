import FlowCore
import Foundation

/// `delegate_training`: validates a training request and hands it to `ml-queue` as a
/// `train_organizational_model` activity (the seed's training service delegation).
///
/// The ML request's message id is derived from the job id, so delegating the same job
/// twice (a retry, a duplicate) starts one training job.
public enum DelegateTraining: ActivityDeclaration {
    public static let name = "delegate_training"

    public static let queue = WorkQueue.default

    /// The activity on `ml-queue` that trains.
    public static let trainingActivity = "train_organizational_model"

    public struct Input: Codable, Sendable {
        public var jobID: String
        /// The base model folder, relative to the data folder (`models/qwen2-0.5b`).
        public var baseModel: String
        /// The dataset: a JSON-lines file relative to the data folder, or a blob id.
        public var dataset: String
        /// LoRA and training settings, passed to the ML actor unchanged.
        public var lora: JSONText?
        public var training: JSONText?
        /// Where the ML actor sends progress and its final reply.
        public var replyTo: String?


        public init(jobID: String, baseModel: String, dataset: String, lora: JSONText? = nil, training: JSONText? = nil, replyTo: String? = nil) {
            self.jobID = jobID
            self.baseModel = baseModel
            self.dataset = dataset
            self.lora = lora
            self.training = training
            self.replyTo = replyTo
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var jobID: String
        public var queue: String
        public var messageID: String


        public init(jobID: String, queue: String, messageID: String) {
            self.jobID = jobID
            self.queue = queue
            self.messageID = messageID
        }
    }
}
