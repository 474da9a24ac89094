/// The three work queues, one per worker actor, as the original Temporal task queues were.
public enum WorkQueue: String, Sendable, Hashable, CaseIterable, Codable {
    /// Documents, storage, health, cleanup, scheduling, delegation of training.
    case `default` = "default-queue"
    /// LoRA fine-tuning, model evaluation, training job management.
    case ml = "ml-queue"
    /// OpenAI-compatible chat API calls.
    case openai = "openai-queue"

    /// The queue's name on the broker.
    public var queueName: String { rawValue }

    /// The short name used on the command line: `flow worker default|ml|openai`.
    public var workerName: String {
        switch self {
        case .default: return "default"
        case .ml: return "ml"
        case .openai: return "openai"
        }
    }

    /// Finds a queue by its short worker name or its queue name.
    public init?(workerName: String) {
        guard let match = WorkQueue.allCases.first(where: { $0.workerName == workerName || $0.queueName == workerName }) else {
            return nil
        }
        self = match
    }
}
