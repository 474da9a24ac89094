import FlowCore
import Foundation
import ServiceContextModule

/// Child workflows: a parent's command starts a workflow of its own, and the child's end
/// is recorded in the parent's journal at that command's position.
///
/// Every step is idempotent, so a crash anywhere loses nothing and starts nothing twice:
/// - the parent records `child_scheduled` first, then creates the child, whose start is
///   idempotent on its id and carries a link to the parent (``ParentLink``);
/// - the child's end, once recorded in its own journal, is handed to the parent; a
///   parent that missed it (a crash between the two writes) asks the child again when it
///   resumes, since its command is still waiting;
/// - when the parent ends first, each child still running gets its parent-close policy.
extension WorkflowCoordinator {
    /// How a child ended, as its parent's journal takes it.
    enum ChildOutcome: Sendable {
        case completed(JSONText)
        case failed(ActivityFailure)

        /// The end recorded in `record`, a finished child.
        init(finished record: WorkflowRecord) {
            if record.status == .completed {
                self = .completed(record.output ?? .null)
            } else {
                self = .failed(record.error ?? .nonRetryable(.unknown, "the child workflow \(record.status.rawValue) without a recorded error"))
            }
        }

        func event(at position: Int) -> WorkflowEvent {
            switch self {
            case .completed(let output): .childCompleted(position: position, output: output)
            case .failed(let failure): .childFailed(position: position, failure: failure)
            }
        }

        /// What the parent's code receives.
        func result(for child: WorkflowJournal.Command?) -> Result<JSONText, any Error> {
            switch self {
            case .completed(let output): .success(output)
            case .failed(let failure): .failure(ChildWorkflowError(child: child, failure: failure))
            }
        }
    }

    /// Starts the child a parent's journal records at `child.position`, or finds it
    /// started. A child that has ended already, cannot start (no such workflow here), or
    /// whose id another workflow holds, is reported to the parent at once.
    func startChild(_ child: WorkflowEvent.ScheduledChild, of parentID: String, trace: ServiceContext) async throws {
        let link = ParentLink(workflowID: parentID, position: child.position)
        let record: WorkflowRecord
        do {
            record = try await start(workflow: child.workflow, id: child.workflowID, input: child.input, recipient: nil, trace: trace, parent: link)
        } catch let failure as ActivityFailure {
            try await reportChildEnd(.failed(failure), to: link)
            return
        }
        if record.parent != link {
            let failure = ActivityFailure.nonRetryable(
                .invalidInput, "workflow id \(child.workflowID) is taken by another workflow (\(record.name), \(record.status.rawValue)): give the child an id of its own"
            )
            try await reportChildEnd(.failed(failure), to: link)
        } else if record.status.isFinished {
            try await reportChildEnd(ChildOutcome(finished: record), to: link)
        }
    }

    /// Hands a child's end to its parent's driver, or, when the parent does not run here,
    /// records it in the parent's journal for its next run to replay.
    func reportChildEnd(_ outcome: ChildOutcome, to link: ParentLink) async throws {
        if let handle = runs[link.workflowID], case .enqueued = handle.inputs.yield(.childEnded(position: link.position, outcome)) { return }
        try await recordChildEnd(outcome, at: link.position, of: link.workflowID)
    }

    /// Records a child's end in the journal of a parent that does not run here. Nothing
    /// when the parent has it, or has ended.
    func recordChildEnd(_ outcome: ChildOutcome, at position: Int, of parentID: String) async throws {
        let event = outcome.event(at: position)
        _ = try await amend(parentID) { journal in (journal.answering(event) == .record ? [event] : [], ()) }
    }

    /// The reason to cancel a resumed child whose parent ended while it was not told (a
    /// coordinator stopped between the parent's end and its close policy); nil when the
    /// parent runs on, or abandoned it.
    func orphanReason(of record: WorkflowRecord) async -> (reason: String, terminate: Bool)? {
        guard let link = record.parent, let entries = try? await store.journal(workflowID: link.workflowID), let parent = try? WorkflowJournal(entries),
            parent.ending != nil, case .child(let child, _)? = parent.commands[safe: link.position], child.workflowID == record.id
        else { return nil }
        return Self.closeReason(child.parentClosePolicy, parentID: link.workflowID, status: parent.status).map { ($0, child.parentClosePolicy == .terminate) }
    }

    /// Why a child is cancelled when its parent ended with `status`; nil: it is abandoned.
    static func closeReason(_ policy: ParentClosePolicy, parentID: String, status: WorkflowStatus) -> String? {
        switch policy {
        case .abandon: nil
        case .terminate: "terminated: its parent \(parentID) ended (\(status.rawValue))"
        case .requestCancel: "its parent \(parentID) ended (\(status.rawValue)) and asked it to cancel"
        }
    }

    /// After a workflow ended: its end goes to its parent, and each child it leaves running
    /// gets its parent-close policy. Failures are logged: a parent that missed the end asks
    /// again when it resumes.
    /// `childrenFrom`: only the children at this position or later (a reset keeps the ones before).
    func closeFamily(of record: WorkflowRecord, ended journal: WorkflowJournal?, childrenFrom: Int = 0) async {
        if let parent = record.parent {
            do {
                try await reportChildEnd(ChildOutcome(finished: record), to: parent)
            } catch {
                logger.error("could not report a child's end to its parent; the parent asks again when it resumes", metadata: ["workflow.id": "\(record.id)", "parent.id": "\(parent.workflowID)", "error": "\(error)"])
            }
        }
        for child in journal?.openChildren ?? [] where child.position >= childrenFrom {
            guard let reason = Self.closeReason(child.parentClosePolicy, parentID: record.id, status: record.status) else { continue }
            do {
                try await cancel(workflowID: child.workflowID, reason: reason, terminate: child.parentClosePolicy == .terminate)
            } catch {
                logger.error("could not apply a parent-close policy", metadata: ["workflow.id": "\(child.workflowID)", "parent.id": "\(record.id)", "error": "\(error)"])
            }
        }
    }
}
