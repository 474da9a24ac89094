/// Thrown by an activity to hand its message back to the queue without spending an
/// attempt: the work is not finished and nothing failed.
///
/// Long work uses it to keep no delivery longer than the broker's `consumer_timeout`
/// (it saves its progress, and a fresh copy of the message continues it), a worker that is
/// stopping uses it to give its work to another, and a worker that cannot take the work
/// now (its one training slot is busy) uses it to let another worker have it. The worker
/// publishes the copy, confirmed, before it acknowledges the delivery, so the message is
/// never lost; a copy is the same request (same message id, same attempt) with the
/// `flow-deferrals` header counting the hand-backs.
public struct ActivityDeferral: Error, Sendable, CustomStringConvertible {
    /// Why the work was handed back, for the log.
    public var reason: String
    /// How long the message waits before a worker sees it again: zero puts it straight at
    /// the tail of its queue; anything longer waits in the nearest retry delay tier at or
    /// above it (the broker keeps the wait, not the worker).
    public var delay: Duration

    public init(_ reason: String, delay: Duration = .zero) {
        self.reason = reason
        self.delay = delay
    }

    public var description: String { "deferred (\(delay)): \(reason)" }
}
