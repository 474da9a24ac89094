import FlowCore
import Foundation

/// How a worker actor runs. Every field has a default suited to its queue; the command
/// line sets them from flags and `FLOW_*` environment variables (`docs/configuration.md`).
public struct WorkerConfiguration: Sendable {
    /// The queue this worker consumes.
    public var queue: WorkQueue
    /// Broker object names (a prefix in tests).
    public var names: TopologyNames
    /// How many activities run at once; also the consumer's prefetch, so the broker never
    /// hands this worker more than it can start. Each actor's profile has its default.
    public var concurrency: Int
    /// Where the worker keeps its files: the activity store, blobs, documents.
    public var dataFolder: URL
    /// How long in-flight activities may run on after SIGTERM before they are cancelled and
    /// their messages returned to the queue.
    public var shutdownGracePeriod: Duration
    /// This worker's name in logs and dead-letter annotations.
    public var workerID: String
    /// The waits between publishes of a reply (or retry or dead-letter copy) the broker
    /// refused; the delivery stays unacknowledged meanwhile (``MessageTransport/publishUntilTaken(_:backoff:onRefusal:)``).
    public var refusedPublishBackoff = Backoff.refusedPublish

    public init(
        queue: WorkQueue,
        names: TopologyNames = TopologyNames(),
        concurrency: Int? = nil,
        dataFolder: URL,
        shutdownGracePeriod: Duration = .seconds(30),
        workerID: String = WorkerConfiguration.defaultWorkerID()
    ) {
        self.queue = queue
        self.names = names
        self.concurrency = concurrency ?? 8
        self.dataFolder = dataFolder
        self.shutdownGracePeriod = shutdownGracePeriod
        self.workerID = workerID
    }

    public static func defaultWorkerID() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// The SQLite file of the worker's activity store.
    public var storePath: String {
        dataFolder.appendingPathComponent("state/\(queue.workerName)-activities.sqlite").path
    }
}
