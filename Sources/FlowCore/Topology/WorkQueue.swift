/// A work queue: one per worker actor, as the original Temporal task queues were. Queues
/// are data, not a closed list: an application adds its own actor's queue with
/// `WorkQueue(queueName:workerName:)` and the topology declares it
/// (`docs/workers.md`, "Adding an actor and its queue").
public struct WorkQueue: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The queue's name on the broker.
    public let queueName: String
    /// The short name on the command line: `flow worker default|ml|openai`.
    public let workerName: String

    public init(queueName: String, workerName: String) {
        self.queueName = queueName
        self.workerName = workerName
    }

    /// Documents, storage, health, cleanup, scheduling, delegation of training.
    public static let `default` = WorkQueue(queueName: "default-queue", workerName: "default")
    /// LoRA fine-tuning, model evaluation, training job management.
    public static let ml = WorkQueue(queueName: "ml-queue", workerName: "ml")
    /// OpenAI-compatible chat API calls.
    public static let openai = WorkQueue(queueName: "openai-queue", workerName: "openai")

    /// The queues of the actors this system ships, which the topology declares.
    public static let builtIn: [WorkQueue] = [.default, .ml, .openai]

    /// Finds a built-in queue by its short worker name or its queue name.
    public init?(workerName: String) {
        guard let match = WorkQueue.builtIn.first(where: { $0.workerName == workerName || $0.queueName == workerName }) else { return nil }
        self = match
    }

    public var description: String { queueName }

    // On the wire and in stores a queue is its broker name, as it always was.
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        self = WorkQueue.builtIn.first { $0.queueName == name } ?? WorkQueue(queueName: name, workerName: name)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(queueName)
    }
}
