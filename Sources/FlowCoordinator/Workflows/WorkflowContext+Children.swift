import FlowCore
import Foundation

extension WorkflowContext {
    /// Starts workflow `W` as a child of this one and returns its output once it ends.
    ///
    /// The child is a workflow of its own, with its own journal, id and history; this
    /// workflow records only that it started it and how it ended. A child that fails, is
    /// cancelled, or cannot start (its id is taken by another workflow) throws
    /// ``ChildWorkflowError`` here. `id` defaults to `<this id>-<W.name>-<position>`, which
    /// is the same on every replay. `parentClosePolicy` says what becomes of the child if
    /// this workflow ends first.
    ///
    /// A crash between this command and the child's start starts it on the next run, once
    /// (a start is idempotent on the child's id); a child that ended meanwhile hands over
    /// its recorded end.
    public func executeChild<W: Workflow>(
        _ workflow: W.Type, _ input: W.Input, id: String? = nil, parentClosePolicy: ParentClosePolicy = .terminate
    ) async throws -> W.Output {
        let position = run.issuedCount
        let childID = id ?? "\(workflowID)-\(W.name)-\(position)"
        guard !childID.isEmpty, !childID.contains("/") else {
            throw ChildWorkflowError(workflow: W.name, workflowID: childID, failure: .nonRetryable(.invalidInput, "a child workflow id must be non-empty and contain no '/'"))
        }
        let call = ChildCall(workflow: W.name, workflowID: childID, input: try input as? JSONText ?? JSONText(encoding: input), parentClosePolicy: parentClosePolicy)
        let output = try await run.perform(.child(call))
        if let output = output as? W.Output { return output }
        do {
            return try output.decode(W.Output.self)
        } catch {
            throw ChildWorkflowError(
                workflow: W.name, workflowID: childID,
                failure: .nonRetryable(.outputMismatch, "the output of child workflow \(W.name) does not decode as \(W.Output.self): \(error)")
            )
        }
    }
}

/// A child workflow failed, was cancelled or terminated, or could not start.
public struct ChildWorkflowError: Error, Sendable, CustomStringConvertible {
    /// The child's workflow name and id.
    public var workflow: String
    public var workflowID: String
    /// How it ended (`kind` `cancelled` for a cancelled or terminated child).
    public var failure: ActivityFailure

    public init(workflow: String, workflowID: String, failure: ActivityFailure) {
        self.workflow = workflow
        self.workflowID = workflowID
        self.failure = failure
    }

    /// The error for the child command a journal records (`child`), which failed with `failure`.
    package init(child: WorkflowJournal.Command?, failure: ActivityFailure) {
        if case .child(let scheduled, _)? = child {
            self.init(workflow: scheduled.workflow, workflowID: scheduled.workflowID, failure: failure)
        } else {
            self.init(workflow: "a child workflow", workflowID: "", failure: failure)
        }
    }

    public var description: String { "child workflow \(workflow) (\(workflowID)) failed: \(failure)" }
}
