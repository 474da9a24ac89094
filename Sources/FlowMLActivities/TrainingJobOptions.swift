import Foundation

/// How the ML actor runs training jobs.
public struct TrainingJobOptions: Sendable {
    /// This worker's name in job records and job locks.
    public var workerID: String
    /// The longest one delivery trains a job. At this limit the job writes a checkpoint,
    /// a copy of its message goes back to the queue and the delivery is acknowledged, so
    /// no delivery outlives the broker's `consumer_timeout` (30 minutes); the copy carries
    /// the job on from the checkpoint. Keep it below `consumer_timeout` with room for one
    /// training step.
    public var deliveryHoldLimit: Duration
    /// How long a training request waits in a retry delay queue when this worker is
    /// already training, or another worker trains the same job.
    public var busyRetryDelay: Duration
    /// How often a training job reports progress (a heartbeat to the requester, and its
    /// record) between its first step, its checkpoints and its last step, which always
    /// report.
    public var progressInterval: Duration

    public init(workerID: String, deliveryHoldLimit: Duration = .seconds(20 * 60), busyRetryDelay: Duration = .seconds(5), progressInterval: Duration = .seconds(1)) {
        self.workerID = workerID
        self.deliveryHoldLimit = deliveryHoldLimit
        self.busyRetryDelay = busyRetryDelay
        self.progressInterval = progressInterval
    }
}
