/// A question a workflow answers from its state, declared once and used by the workflow
/// that answers it (`WorkflowContext.onQuery`) and by whoever asks (`flow.workflow.query`,
/// `flow workflow query`). A query reads; it never changes the workflow or its journal.
///
/// ```swift
/// enum Progress: QueryDeclaration {
///     static let name = "progress"
///     struct Output: Codable, Sendable { var stage: String }
/// }
/// ```
public protocol QueryDeclaration: Sendable {
    /// The query's name in `flow.workflow.query`.
    static var name: String { get }
    associatedtype Output: Codable & Sendable
}
