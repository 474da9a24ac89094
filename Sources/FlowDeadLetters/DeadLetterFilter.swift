import Foundation

/// Which dead letters an operation applies to. Every condition given must hold.
public struct DeadLetterFilter: Sendable {
    public var queue: String?
    public var activity: String?
    /// The reason: `rejected`, `expired`, `delivery_limit`, `failed`, or an error type.
    public var reason: String?
    /// A substring of the error type or message.
    public var error: String?
    public var olderThan: Duration?
    public var newerThan: Duration?
    public var messageID: String?
    public var workflowID: String?

    public init(
        queue: String? = nil, activity: String? = nil, reason: String? = nil, error: String? = nil, olderThan: Duration? = nil,
        newerThan: Duration? = nil, messageID: String? = nil, workflowID: String? = nil
    ) {
        self.queue = queue
        self.activity = activity
        self.reason = reason
        self.error = error
        self.olderThan = olderThan
        self.newerThan = newerThan
        self.messageID = messageID
        self.workflowID = workflowID
    }

    public func matches(_ letter: DeadLetter, now: Date = Date()) -> Bool {
        if let queue, letter.originalQueue != queue { return false }
        if let activity, letter.activity != activity { return false }
        if let reason, letter.reason != reason, letter.errorType != reason { return false }
        if let error {
            let text = "\(letter.errorType ?? "") \(letter.errorMessage ?? "")"
            if !text.localizedCaseInsensitiveContains(error) { return false }
        }
        if let messageID, letter.messageID != messageID, letter.displayID != messageID { return false }
        if let workflowID, letter.workflowID != workflowID { return false }
        if olderThan != nil || newerThan != nil {
            guard let time = letter.deadLetteredAt else { return false }
            let age = now.timeIntervalSince(time)
            if let olderThan, age < Self.seconds(olderThan) { return false }
            if let newerThan, age > Self.seconds(newerThan) { return false }
        }
        return true
    }

    /// Parses `30s`, `15m`, `2h`, `7d`.
    public static func parseAge(_ text: String) -> Duration? {
        guard let unit = text.last, let value = Double(text.dropLast()), value >= 0 else { return nil }
        switch unit {
        case "s": return .milliseconds(Int64(value * 1_000))
        case "m": return .milliseconds(Int64(value * 60_000))
        case "h": return .milliseconds(Int64(value * 3_600_000))
        case "d": return .milliseconds(Int64(value * 86_400_000))
        default: return nil
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
