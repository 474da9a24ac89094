import FlowCore
import Foundation

/// Signals: recorded in the workflow's journal before the sender is answered, then handed
/// to its code (`WorkflowContext.receive`), once each and in the order recorded.
extension WorkflowCoordinator {
    /// Records a signal for a workflow and hands it to its code. `signalID` makes a signal
    /// sent again (a command redelivered after a crash) count once.
    public func signal(workflowID: String, name: String, input: JSONText, signalID: String) async throws -> SignalOutcome {
        // A workflow running here: its driver records it and hands it over in one turn.
        if let handle = runs[workflowID] {
            let handled: SignalOutcome? = try await withCheckedThrowingContinuation { done in
                if case .terminated = handle.inputs.yield(.signal(id: signalID, name: name, input: input, done: done)) { done.resume(returning: nil) }
            }
            if let handled { return count(handled) }
        }
        // One that does not run here (parked for its code, or waiting for a relaunch): the
        // signal is recorded, and its next run receives it on the replay.
        var earlier: WorkflowJournal?
        if let record = try await store.workflow(id: workflowID) { earlier = try await earlierRun(of: workflowID, run: record.run) }
        let recorded = try await amend(workflowID) { journal in
            var outcome = Self.signalOutcome(id: signalID, in: journal)
            if outcome == .recorded, earlier?.signalIDs.contains(signalID) == true { outcome = .duplicate }
            return (outcome == .recorded ? [WorkflowEvent.signalReceived(id: signalID, name: name, input: input)] : [], outcome)
        }
        return count(recorded?.0 ?? .noSuchWorkflow)
    }

    /// What a signal with `id` does to `journal`.
    static func signalOutcome(id: String, in journal: WorkflowJournal) -> SignalOutcome {
        if journal.ending != nil { return .workflowEnded(journal.status) }
        if journal.signalIDs.contains(id) { return .duplicate }
        return .recorded
    }

    private func count(_ outcome: SignalOutcome) -> SignalOutcome {
        switch outcome {
        case .recorded: statistics.record(.signalReceived)
        case .duplicate: statistics.record(.duplicateSignal)
        case .workflowEnded, .noSuchWorkflow: break
        }
        return outcome
    }
}

/// What came of a signal.
public enum SignalOutcome: Sendable, Equatable {
    /// Recorded in the workflow's journal; its code receives it.
    case recorded
    /// A signal with this id was recorded before: nothing changed.
    case duplicate
    /// The workflow had ended: nothing was recorded.
    case workflowEnded(WorkflowStatus)
    case noSuchWorkflow

    /// The answer to the sender, in words.
    public func message(workflowID: String, name: String) -> String {
        switch self {
        case .recorded: "signal \(name) recorded for workflow \(workflowID)"
        case .duplicate: "signal \(name) was recorded for workflow \(workflowID) before (same signal id); recorded once"
        case .workflowEnded(let status): "workflow \(workflowID) has ended (\(status.rawValue)); signal \(name) not recorded"
        case .noSuchWorkflow: "no workflow has id \(workflowID); signal \(name) not recorded (set start_workflow to start it with the signal)"
        }
    }

    /// Whether the sender's signal is in the journal.
    public var accepted: Bool { self == .recorded || self == .duplicate }
}
