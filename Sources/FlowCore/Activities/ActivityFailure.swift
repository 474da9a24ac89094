/// The error an activity throws to say how it failed and whether trying again may help.
///
/// Any other error an activity throws counts as retryable, with its Swift type name as
/// ``type``; throw this one to be precise.
public struct ActivityFailure: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    /// A stable name programs can switch on (`InvalidInput`, `UnsupportedFormat`).
    public var type: String
    /// What happened and what to do, for a person.
    public var message: String
    public var retryable: Bool

    public init(type: String, message: String, retryable: Bool) {
        self.type = type
        self.message = message
        self.retryable = retryable
    }

    /// The work was cancelled on request (an operator, a workflow). Not retried and not
    /// dead-lettered: nothing went wrong, so there is nothing to replay.
    public static func cancelled(_ message: String) -> ActivityFailure {
        ActivityFailure(kind: .cancelled, message: message, retryable: false)
    }

    /// Whether this failure reports a cancellation rather than an error.
    public var isCancellation: Bool { kind == .cancelled }

    public var description: String { "\(type): \(message)" }
}
