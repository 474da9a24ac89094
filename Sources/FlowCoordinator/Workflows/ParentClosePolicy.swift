/// What becomes of a child workflow still running when its parent ends (completes, fails
/// or is cancelled), as in Temporal.
public enum ParentClosePolicy: String, Sendable, Codable, CaseIterable {
    /// The child is ended at once, recorded cancelled with the parent's end as the reason.
    case terminate
    /// The child is asked to cancel, as `flow workflow cancel` asks.
    case requestCancel = "request_cancel"
    /// The child runs on to its own end; nobody waits for its result.
    case abandon
}
