/// A signal a workflow takes: a name on the wire and the type of its input, declared once
/// and used by the workflow that waits for it (`WorkflowContext.receive`) and by whoever
/// sends it (`flow.workflow.signal`, `flow workflow signal`).
///
/// ```swift
/// enum ApproveTraining: SignalDeclaration {
///     static let name = "approve_training"
///     struct Input: Codable, Sendable { var approver: String }
/// }
/// ```
public protocol SignalDeclaration: Sendable {
    /// The signal's name in `flow.workflow.signal` and in the workflow's journal.
    static var name: String { get }
    associatedtype Input: Codable & Sendable
}
