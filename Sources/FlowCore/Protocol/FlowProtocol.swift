/// Names fixed by version 1 of the wire protocol (`docs/protocol.md`).
///
/// Anything another AMQP client must send or can read lives here, so the documentation,
/// the broker topology and the code share one source of truth.
public enum FlowProtocol {
    /// The protocol version this build speaks, sent in the ``Header/protocolVersion`` header.
    public static let version: Int64 = 1

    /// The JSON content type of every request and reply body.
    public static let contentType = "application/json"

    /// Header names added by AntifragileFlow. None starts with `x-`, which RabbitMQ reserves
    /// for its own headers (`x-death`, `x-first-death-reason`, `x-delivery-count`).
    public enum Header {
        /// Protocol version of the message; absent means 1.
        public static let protocolVersion = "flow-protocol"
        /// Which attempt this delivery is, starting at 1; absent means 1.
        public static let attempt = "flow-attempt"
        /// The workflow that scheduled the activity, when a workflow did.
        public static let workflowID = "flow-workflow-id"
        /// The activity name, for clients that cannot set the AMQP `type` property
        /// (amqp-publish); replies carry the name of the activity they answer here too.
        public static let activity = "flow-activity"
        /// The idempotency key, for clients that cannot set the AMQP `message_id` property.
        public static let messageID = "flow-message-id"
        /// Absolute deadline of the activity, in milliseconds since the Unix epoch.
        public static let deadline = "flow-deadline-ms"
        /// How long each attempt may run, in milliseconds, when the caller sets it (a
        /// workflow's `startToCloseTimeout`); otherwise the activity's own timeout applies.
        public static let startToCloseTimeout = "flow-timeout-ms"
        /// The caller's retry policy for this request, JSON (``RetryPolicy/WireForm``);
        /// otherwise the activity's own policy applies.
        public static let retryPolicy = "flow-retry-policy"
        /// How many times an operator replayed the message from the dead-letter queue.
        public static let replayCount = "flow-replay-count"
        /// Why the message was dead-lettered by a worker, in words a person can act on.
        public static let failureReason = "flow-failure-reason"
        /// The error type of the last failure of the message.
        public static let errorType = "flow-error-type"
        /// The heartbeat details of the previous attempt (JSON text), carried on a retry so
        /// any worker can resume the work.
        public static let lastHeartbeat = "flow-last-heartbeat"
        /// The error of the previous attempt, `Type: message`, carried on a retry.
        public static let lastError = "flow-last-error"
        /// How many times a worker handed the message back to its queue without spending
        /// an attempt (a long job continuing in a fresh delivery, a busy or stopping worker).
        public static let deferrals = "flow-deferrals"
        /// The queue a message was dead-lettered from by a worker.
        public static let deadLetteredFrom = "flow-dead-lettered-from"
        /// The worker that dead-lettered a message.
        public static let deadLetteredBy = "flow-dead-lettered-by"
        /// When a worker dead-lettered a message, in milliseconds since the Unix epoch.
        public static let deadLetteredAt = "flow-dead-lettered-at-ms"
        /// W3C trace context, so traces cross the broker (with `tracestate`).
        public static let traceParent = "traceparent"
        /// When the message was published, in milliseconds since the Unix epoch: the AMQP
        /// `timestamp` has whole seconds only, too coarse for a queue's lag.
        public static let sentAt = "flow-sent-at-ms"
        /// How urgent the request is: `high`, `normal` (the default) or `low`. Actors with a
        /// shared capacity, such as the OpenAI actor's rate limits, serve higher first.
        public static let priority = "flow-priority"
        /// Whose capacity the request uses (a tenant, a project): keys share a limited
        /// capacity fairly, and each may have a limit of its own (docs/openai.md).
        public static let rateKey = "flow-rate-key"
    }

    /// Values of the AMQP `type` property on replies.
    public enum ReplyType {
        public static let completed = "flow.reply.completed"
        public static let failed = "flow.reply.failed"
        public static let progress = "flow.reply.progress"
    }
}
