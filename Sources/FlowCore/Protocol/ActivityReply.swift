/// The body of a reply a worker sends to a request's `reply_to` queue.
///
/// One request gets any number of `progress` replies and then exactly one `completed`
/// or `failed` reply. The output is kept as raw JSON so that the reply can be read
/// without knowing the activity's output type.
public struct ActivityReply: Codable, Sendable, Equatable {
    /// How the activity ended, or `progress` while it runs.
    public enum Status: String, Codable, Sendable {
        case completed
        case failed
        case progress
    }

    /// Why an activity failed, and whether trying again may help: the same shape an
    /// activity throws.
    public typealias Failure = ActivityFailure

    public var `protocol`: Int64
    public var status: Status
    /// The activity name, the request's AMQP `type`.
    public var activity: String
    /// The request's `message_id`.
    public var messageID: String
    /// The attempt that produced this reply.
    public var attempt: Int64
    /// The activity's output as JSON text, when completed.
    public var output: JSONText?
    /// The failure, when failed.
    public var error: Failure?
    /// Heartbeat details, when progress.
    public var progress: JSONText?

    public init(
        status: Status,
        activity: String,
        messageID: String,
        attempt: Int64,
        output: JSONText? = nil,
        error: Failure? = nil,
        progress: JSONText? = nil
    ) {
        self.protocol = FlowProtocol.version
        self.status = status
        self.activity = activity
        self.messageID = messageID
        self.attempt = attempt
        self.output = output
        self.error = error
        self.progress = progress
    }
}
