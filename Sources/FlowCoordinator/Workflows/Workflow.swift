import FlowCore
import Foundation

/// A durable workflow: a Swift type with a stable name, `Codable` input and output, and
/// the code that drives its activities.
///
/// ```swift
/// struct Onboarding: Workflow {
///     static let name = "document_onboarding"
///     func run(context: WorkflowContext, input: Input) async throws -> Output {
///         let upload = try await context.execute(ProcessDocumentUpload.self, .init(path: input.path))
///         ...
///     }
/// }
/// ```
///
/// **The replay rule.** Every call through the context is a command at the next position
/// of the workflow's journal. After a restart the coordinator runs `run` again from the
/// top on an executor it owns and resumes it with the recorded outcomes, in journal order:
/// recorded steps are not sent again. For the code to issue the same commands at the same
/// positions, `run` must be deterministic. Do all I/O in activities, wait only with
/// ``WorkflowContext/sleep(for:)``, read the time as ``WorkflowContext/now`` and draw
/// random values and ids from the context. Parallel steps (`async let`, task groups) are
/// fine. A replay that finds another command at a recorded position parks the workflow
/// (``WorkflowNondeterminism``); a changed input does not count (`docs/workflows.md`).
public protocol Workflow: Sendable {
    associatedtype Input: Codable & Sendable
    associatedtype Output: Codable & Sendable

    /// The workflow's name in start commands. Never rename a workflow that has runs.
    static var name: String { get }

    func run(context: WorkflowContext, input: Input) async throws -> Output
}

/// The workflows a coordinator can run, by name.
public struct WorkflowRegistry: Sendable {
    package struct Entry: Sendable {
        package let name: String
        package let run: @Sendable (_ input: JSONText, _ context: WorkflowContext) async throws -> JSONText
    }

    private(set) var entries: [String: Entry] = [:]

    public init() {}

    /// Adds a workflow. Registering two workflows of one name is a programming error.
    public mutating func register<W: Workflow>(_ workflow: W) {
        precondition(entries[W.name] == nil, "workflow \(W.name) is registered twice")
        entries[W.name] = Entry(name: W.name) { input, context in
            let decoded: W.Input
            do {
                decoded = try input.decode(W.Input.self)
            } catch {
                throw ActivityFailure.nonRetryable(.invalidInput, "the input of workflow \(W.name) does not decode: \(error)")
            }
            return try JSONText(encoding: try await workflow.run(context: context, input: decoded))
        }
    }

    /// The names of the registered workflows, sorted.
    public var names: [String] { entries.keys.sorted() }

    package func entry(named name: String) -> Entry? { entries[name] }
}
