/// A change a caller asks of a running workflow and waits for: the workflow's validator
/// accepts or rejects it, its handler changes the workflow's state and returns a result.
/// Declared once and used by the workflow that handles it (`WorkflowContext.onUpdate`)
/// and by whoever sends it (`flow.workflow.update`, `flow workflow update`).
///
/// ```swift
/// enum SetDeadline: UpdateDeclaration {
///     static let name = "set_deadline"
///     struct Input: Codable, Sendable { var days: Int }
///     typealias Output = String
/// }
/// ```
public protocol UpdateDeclaration: Sendable {
    /// The update's name in `flow.workflow.update`.
    static var name: String { get }
    associatedtype Input: Codable & Sendable
    associatedtype Output: Codable & Sendable
}
