import FlowCore
import Foundation
import Logging

/// What a running activity knows about its request, and how it reports progress.
public struct ActivityContext: Sendable {
    /// The request's idempotency key.
    public let messageID: String
    /// The activity's name.
    public let activity: String
    /// Which attempt this is, from 1.
    public let attempt: Int
    /// When the attempt must have finished (the earlier of the request's deadline and the
    /// activity's start-to-close timeout).
    public let deadline: ContinuousClock.Instant
    /// The workflow that scheduled the activity, if any.
    public let workflowID: String?
    /// The details the last attempt reported with ``heartbeat(_:)``, so a retry can resume.
    public let lastHeartbeatDetails: JSONText?
    /// A logger carrying the workflow, activity and message ids.
    public let logger: Logger
    /// How urgent the request is (`flow-priority`): where activities wait for a shared
    /// capacity, higher ones go first.
    public let priority: ActivityPriority
    /// Whose capacity the request uses (`flow-rate-key`), if the publisher said.
    public let rateKey: String?

    let progressReporter: @Sendable (JSONText) async -> Void
    let shutdownSignal: ShutdownSignal

    public init(
        messageID: String,
        activity: String,
        attempt: Int,
        deadline: ContinuousClock.Instant,
        workflowID: String?,
        lastHeartbeatDetails: JSONText?,
        logger: Logger,
        priority: ActivityPriority = .normal,
        rateKey: String? = nil,
        shutdownSignal: ShutdownSignal = ShutdownSignal(),
        progressReporter: @escaping @Sendable (JSONText) async -> Void
    ) {
        self.shutdownSignal = shutdownSignal
        self.messageID = messageID
        self.activity = activity
        self.attempt = attempt
        self.deadline = deadline
        self.workflowID = workflowID
        self.lastHeartbeatDetails = lastHeartbeatDetails
        self.logger = logger
        self.priority = priority
        self.rateKey = rateKey
        self.progressReporter = progressReporter
    }

    /// Reports progress: the details reach the request's `reply_to` as a progress reply,
    /// and a retry of this request finds them in ``lastHeartbeatDetails``.
    public func heartbeat<Details: Encodable>(_ details: Details) async {
        guard let text = try? JSONText(encoding: details) else { return }
        await progressReporter(text)
    }

    /// Decodes the last attempt's heartbeat details, when there are any of that type.
    public func lastHeartbeat<Details: Decodable>(as type: Details.Type) -> Details? {
        try? lastHeartbeatDetails?.decode(type)
    }

    /// Whether the worker has begun a graceful shutdown. Long work checks it to save its
    /// progress and throw ``ActivityDeferral`` before the grace period ends.
    public var isWorkerShuttingDown: Bool { shutdownSignal.isRequested }

    /// Throws `CancellationError` when the worker is shutting down or the deadline passed.
    public func checkCancellation() throws {
        try Task.checkCancellation()
    }
}
