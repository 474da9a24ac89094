import FlowCore

/// How a workflow runs one activity. Unset values come from the activity's declaration.
public struct ActivityOptions: Sendable, Codable, Equatable {
    /// What a step does when its activity fails for good (the worker dead-lettered it).
    public enum FinalFailure: String, Sendable, Codable {
        /// The workflow waits, parked, until an operator replays the message from the
        /// dead-letter queue (then it continues) or cancels the workflow.
        case park
        /// `execute` throws ``ActivityError``, for workflows that handle the failure.
        case `throw`
    }

    /// How long one attempt may run; the worker cancels it after this.
    public var startToCloseTimeout: Duration?
    /// How long the step may take in all, retries included. After it the coordinator sends
    /// the request again (same message id) or, when the retry policy allows no more, fails
    /// the step with `ActivityTimedOut`.
    public var scheduleToCloseTimeout: Duration?
    /// Once the activity has reported progress, how long it may stay silent before the
    /// coordinator counts the attempt as lost.
    public var heartbeatTimeout: Duration?
    public var retryPolicy: RetryPolicy?
    public var onFinalFailure: FinalFailure
    /// How many times the coordinator sends the request again, under the same message id,
    /// when no final reply came in time (a lost message, a vanished worker) before it fails
    /// the step with `ActivityTimedOut`.
    public var maximumResends: Int

    public init(
        startToCloseTimeout: Duration? = nil,
        scheduleToCloseTimeout: Duration? = nil,
        heartbeatTimeout: Duration? = nil,
        retryPolicy: RetryPolicy? = nil,
        onFinalFailure: FinalFailure = .park,
        maximumResends: Int = 2
    ) {
        self.startToCloseTimeout = startToCloseTimeout
        self.scheduleToCloseTimeout = scheduleToCloseTimeout
        self.heartbeatTimeout = heartbeatTimeout
        self.retryPolicy = retryPolicy
        self.onFinalFailure = onFinalFailure
        self.maximumResends = maximumResends
    }
}

/// An activity a workflow called failed for good, or the coordinator gave up waiting for it.
public struct ActivityError: Error, Sendable, CustomStringConvertible {
    public var activity: String
    public var failure: ActivityFailure

    public init(activity: String, failure: ActivityFailure) {
        self.activity = activity
        self.failure = failure
    }

    public var description: String { "\(activity) failed: \(failure)" }
}
