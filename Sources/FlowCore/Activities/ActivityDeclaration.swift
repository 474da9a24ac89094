/// What the rest of the system needs to know about an activity to call it: its stable
/// name (the AMQP `type` of its requests), the queue whose worker runs it, its input and
/// output types, and how failures are retried.
///
/// Declarations live apart from implementations so that the coordinator and the command
/// line can call an activity without linking the code that runs it.
public protocol ActivityDeclaration: Sendable {
    associatedtype Input: Codable & Sendable
    associatedtype Output: Codable & Sendable

    /// The activity's name on the wire. Never rename a published activity: old messages
    /// in queues and in the dead-letter queue still carry the old name.
    static var name: String { get }
    /// The queue whose worker runs this activity.
    static var queue: WorkQueue { get }
    /// How failed attempts are retried.
    static var retryPolicy: RetryPolicy { get }
    /// How long one attempt may run before it is cancelled and counted as failed.
    static var startToCloseTimeout: Duration { get }
}

extension ActivityDeclaration {
    public static var retryPolicy: RetryPolicy { RetryPolicy() }
    public static var startToCloseTimeout: Duration { .seconds(300) }
}

/// An activity's input or output that carries nothing.
public struct Empty: Codable, Sendable, Equatable {
    public init() {}
}
