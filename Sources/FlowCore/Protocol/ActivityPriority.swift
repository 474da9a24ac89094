/// How urgent an activity request is, from its `flow-priority` header. Where requests
/// wait for a shared capacity, every `high` one is served before any `normal` one, and
/// `normal` before `low`.
public enum ActivityPriority: String, Sendable, Codable, CaseIterable, Comparable {
    case high
    case normal
    case low

    /// Parses a header value, in any letter case; nil for anything else.
    public init?(headerValue: String) {
        self.init(rawValue: headerValue.lowercased())
    }

    private var rank: Int {
        switch self {
        case .high: 0
        case .normal: 1
        case .low: 2
        }
    }

    /// Higher priorities sort first.
    public static func < (lhs: ActivityPriority, rhs: ActivityPriority) -> Bool { lhs.rank < rhs.rank }
}
