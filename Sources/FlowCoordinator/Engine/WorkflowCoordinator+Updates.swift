import FlowCore
import Foundation

/// Updates: validated, recorded, applied to the workflow's state, and answered with the
/// handler's result, by the workflow's driver between two facts.
extension WorkflowCoordinator {
    /// Asks workflow `workflowID` for update `name`. `updateID` makes an update sent again
    /// apply once, and be answered with the first result.
    public func update(workflowID: String, name: String, input: JSONText, updateID: String) async throws -> UpdateOutcome {
        if let handle = runs[workflowID] {
            let handled: UpdateOutcome? = try await withCheckedThrowingContinuation { done in
                if case .terminated = handle.inputs.yield(.update(id: updateID, name: name, input: input, done: done)) { done.resume(returning: nil) }
            }
            if let handled { return handled }
        }
        // Its code runs nowhere here: an update needs it, to validate and apply.
        guard let record = try await store.workflow(id: workflowID) else { return .noSuchWorkflow }
        if record.status.isFinished { return .workflowEnded(record.status) }
        let journal = try WorkflowJournal(try await store.journal(workflowID: workflowID))
        let earlier = try await earlierRun(of: workflowID, run: record.run)
        if let state = journal.updates[updateID] ?? earlier?.updates[updateID] { return .duplicate(state) }
        return .notRunning(record.parkedReason.map { "it is parked (\($0))" } ?? "it waits to be taken up again")
    }

    /// Validates, records and applies an update to a workflow running here. Called by its
    /// driver, so the code is between two facts.
    func applyUpdate(id: String, name: String, input: JSONText, to run: WorkflowRun) async throws -> UpdateOutcome {
        let journal = journals[run.workflowID] ?? WorkflowJournal()
        if journal.ending != nil { return .workflowEnded(journal.status) }
        let earlier = try await earlierRun(of: run.workflowID, run: run.runNumber)
        if let state = journal.updates[id] ?? earlier?.updates[id] {
            statistics.record(.duplicateUpdate)
            return .duplicate(state)
        }
        do {
            try run.validateUpdate(name, input)
        } catch {
            statistics.record(.updateRejected)
            return .rejected((error as? ActivityFailure)?.message ?? "\(error)")
        }
        try await append([.updateAccepted(id: id, name: name, input: input)], to: run.workflowID)
        let result = run.applyUpdate(name, input)
        let recorded = UpdateResult(output: try? result.get(), failure: result.failure)
        try await append([.updateCompleted(id: id, output: recorded.output, failure: recorded.failure)], to: run.workflowID)
        statistics.record(.updateApplied)
        return .applied(recorded)
    }
}

/// What came of an update.
public enum UpdateOutcome: Sendable, Equatable {
    /// Accepted, recorded and applied: what the handler returned or threw.
    case applied(UpdateResult)
    /// An update with this id was accepted before: its result, if it was recorded.
    case duplicate(UpdateState)
    /// The validator said no (or the workflow takes no such update); nothing was recorded.
    case rejected(String)
    case workflowEnded(WorkflowStatus)
    /// The workflow's code runs nowhere here, so nothing can apply the update now.
    case notRunning(String)
    case noSuchWorkflow

    /// The answer to the sender.
    public func answer(workflowID: String, name: String, updateID: String) -> WorkflowUpdateResult {
        func refused(_ message: String) -> WorkflowUpdateResult {
            WorkflowUpdateResult(workflowID: workflowID, name: name, updateID: updateID, accepted: false, error: .nonRetryable(.invalidInput, message))
        }
        switch self {
        case .applied(let result), .duplicate(.completed(let result)):
            return WorkflowUpdateResult(workflowID: workflowID, name: name, updateID: updateID, accepted: true, output: result.output, error: result.failure)
        case .duplicate(.accepted):
            return WorkflowUpdateResult(workflowID: workflowID, name: name, updateID: updateID, accepted: true)
        case .rejected(let reason): return refused("update \(name) rejected: \(reason)")
        case .workflowEnded(let status): return refused("workflow \(workflowID) has ended (\(status.rawValue)); update \(name) not applied")
        case .notRunning(let why): return refused("workflow \(workflowID) is not running here, \(why); update \(name) not applied, send it again later")
        case .noSuchWorkflow: return refused("no workflow has id \(workflowID); update \(name) not applied (set start_workflow to start it with the update)")
        }
    }
}

extension Result {
    /// The error, when this is a failure.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
