/// A request to stop an activity that is running (or about to run), published to
/// ``Topology/activityCancelExchange`` with the activity's work queue as routing key and
/// ``messageType`` as AMQP `type`. The worker running `message_id` cancels that attempt,
/// which replies `failed` with an error of kind `Cancelled`, and is neither retried nor
/// dead-lettered; a worker that receives it before the request remembers it for an hour
/// and answers the request the same way without running it. Any AMQP client may send it.
public struct ActivityCancel: Codable, Sendable, Equatable {
    public static let messageType = "flow.activity.cancel"

    /// The request's `message_id`.
    public var messageID: String
    /// Why, for the reply's error and the logs.
    public var reason: String

    public init(messageID: String, reason: String) {
        self.messageID = messageID
        self.reason = reason
    }
}
