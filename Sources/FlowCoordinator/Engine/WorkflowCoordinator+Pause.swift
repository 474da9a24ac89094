import FlowCore
import Foundation

extension WorkflowCoordinator {
    /// Pauses a workflow (`reason`) or unpauses it (nil). While paused it records and sends
    /// no new command: what its code asks for waits, and goes out when it is unpaused;
    /// steps already sent run on, and replies, signals and timers are still recorded.
    /// Returns whether it changed anything (false: it was so already), nil when there is
    /// no such workflow or it has ended.
    @discardableResult
    public func pause(workflowID: String, reason: String?) async throws -> Bool? {
        if let handle = runs[workflowID] {
            // Nil: the run stopped before it took the request.
            let handled: Bool? = try await withCheckedThrowingContinuation { done in
                if case .terminated = handle.inputs.yield(.pause(reason: reason, done: done)) { done.resume(returning: nil) }
            }
            if let handled { return handled }
        }
        // Not running here: recorded, and its next run starts paused.
        let amended = try await amend(workflowID) { journal -> ([WorkflowEvent], Bool?) in
            guard journal.ending == nil else { return ([], nil) }
            let events = Self.pauseEvents(reason, in: journal)
            return (events, !events.isEmpty)
        }
        return amended?.0
    }

    /// The event a pause (`reason`) or unpause (nil) adds to `journal`: none when it is so already.
    static func pauseEvents(_ reason: String?, in journal: WorkflowJournal) -> [WorkflowEvent] {
        switch (reason, journal.pausedBecause) {
        case (let reason?, nil): [.workflowPaused(reason: reason)]
        case (nil, _?): [.workflowUnpaused]
        default: []
        }
    }
}
