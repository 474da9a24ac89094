import FlowCore
import Foundation
import Tracing

/// An operator's hand on one activity of a running workflow: pause it (its attempt is asked
/// to stop and no attempt is made), unpause it (it is sent again, its attempts counting
/// on, with the details its last attempt reported), or reset it (sent again from attempt
/// 1). docs/workflows.md, "Pausing and resetting an activity".
///
/// A step is sent again under a new step key (`echo#2@3`), so under a new message id: the
/// old one is cancelled on its worker, whose cancel registry would stop it again, and whose
/// result store must not answer the new attempt with the old one's outcome.
extension WorkflowCoordinator {
    public func controlActivity(workflowID: String, position: Int, _ control: ActivityControl) async throws -> ActivityControlOutcome {
        if let handle = runs[workflowID] {
            let handled: ActivityControlOutcome? = try await withCheckedThrowingContinuation { done in
                if case .terminated = handle.inputs.yield(.activity(position: position, control, done: done)) { done.resume(returning: nil) }
            }
            if let handled { return handled }
        }
        // Not running here (parked on its code, or waiting for a relaunch): recorded; its
        // next run sends what is to be sent. A running attempt is asked to stop now.
        let amended = try await amend(workflowID) { journal in
            let decided = try Self.activityControl(control, at: position, in: journal, workflowID: workflowID)
            return (decided.events, decided)
        }
        guard let (decided, _) = amended else { return ActivityControlOutcome(changed: false, message: "no workflow has id \(workflowID)") }
        if let stop = decided.stop, decided.cancelsAttempt {
            await requestActivityCancel(messageID: "\(workflowID)/\(stop.stepKey)", queue: stop.queue, reason: decided.stopReason)
        }
        return decided.outcome
    }

    /// Carries out a control of a workflow running here, between two facts of its driver.
    func controlActivity(_ position: Int, _ control: ActivityControl, of run: WorkflowRun, trace: ServiceContext) async throws -> ActivityControlOutcome {
        let decided = try Self.activityControl(control, at: position, in: journals[run.workflowID] ?? WorkflowJournal(), workflowID: run.workflowID)
        guard !decided.events.isEmpty else { return decided.outcome }
        try await append(decided.events, to: run.workflowID)
        if let stop = decided.stop {
            let messageID = "\(run.workflowID)/\(stop.stepKey)"
            // No deadline runs for it now; a completion that still comes is recorded.
            machine.stepEnded(messageID)
            if decided.cancelsAttempt { await requestActivityCancel(messageID: messageID, queue: stop.queue, reason: decided.stopReason) }
            if decided.resent != nil {
                stepOwners[messageID] = nil
                stepSpans.removeValue(forKey: messageID)?.end()
            }
        }
        if let key = decided.resent, case .activity(let call)? = run.request(at: position) {
            let messageID = "\(run.workflowID)/\(key)"
            guard let step = try await store.step(messageID: messageID) else {
                throw CoordinatorUnavailable(message: "the journal of \(run.workflowID) sends step \(messageID), which the store lacks")
            }
            try await begin(step, position: position, call: call, trace: trace)
        }
        return decided.outcome
    }

    /// What a control would say of `journal`, or why it is refused: for tests and tools.
    public static func describeActivityControl(_ control: ActivityControl, at position: Int, in journal: WorkflowJournal) throws -> String {
        try activityControl(control, at: position, in: journal, workflowID: "w").outcome.message
    }

    /// What a control does to `journal`: the events to record, the message to stop on its
    /// worker, the key it is sent again under. Throws `InvalidInput` for a position that
    /// holds no activity still waiting.
    static func activityControl(_ control: ActivityControl, at position: Int, in journal: WorkflowJournal, workflowID: String) throws -> ActivityControlDecision {
        guard journal.ending == nil else {
            throw ActivityFailure.nonRetryable(.invalidInput, "workflow \(workflowID) has ended (\(journal.status.rawValue)): its activities run no more")
        }
        guard let command = journal.commands[safe: position] else {
            throw ActivityFailure.nonRetryable(.invalidInput, "workflow \(workflowID) has no command \(position) (it has \(journal.commands.count)): `flow workflow show \(workflowID)` lists them")
        }
        guard case .activity(let scheduled, let state) = command else {
            throw ActivityFailure.nonRetryable(.invalidInput, "command \(position) of \(workflowID) is no activity: only activities pause, unpause and reset")
        }
        let name = "\(scheduled.activity) (command \(position) of \(workflowID))"
        switch state {
        case .completed, .failed:
            throw ActivityFailure.nonRetryable(.invalidInput, "\(name) has its outcome already: there is nothing to \(control.verb)")
        case .waiting, .parked:
            break
        }
        let paused = journal.pausedActivities[position] != nil
        let stop = (stepKey: scheduled.stepKey, queue: scheduled.queue)
        let next = WorkflowJournal.resentKey(after: scheduled.stepKey)
        switch control {
        case .pause(let reason):
            guard !paused else { return ActivityControlDecision(outcome: .init(changed: false, message: "\(name) was paused already")) }
            return ActivityControlDecision(
                events: [.activityPaused(position: position, reason: reason)], stop: stop, stopReason: "paused by an operator: \(reason)",
                outcome: .init(changed: true, message: "\(name) paused: its attempt was asked to stop, and none is made until it is unpaused")
            )
        case .unpause:
            guard paused else { return ActivityControlDecision(outcome: .init(changed: false, message: "\(name) is not paused")) }
            return ActivityControlDecision(
                events: [.activityResumed(position: position, stepKey: next, resetAttempts: false)], stop: stop, cancelsAttempt: false, resent: next,
                outcome: .init(changed: true, message: "\(name) unpaused: sent again as \(workflowID)/\(next), its attempts counting on")
            )
        case .reset:
            return ActivityControlDecision(
                events: [.activityResumed(position: position, stepKey: next, resetAttempts: true)], stop: stop, cancelsAttempt: !paused, stopReason: "reset by an operator", resent: next,
                outcome: .init(changed: true, message: "\(name) reset: sent again as \(workflowID)/\(next) from attempt 1")
            )
        }
    }
}

/// What an operator does to one activity of a workflow.
public enum ActivityControl: Sendable, Equatable {
    case pause(reason: String)
    case unpause
    case reset

    var verb: String {
        switch self {
        case .pause: "pause"
        case .unpause: "unpause"
        case .reset: "reset"
        }
    }
}

/// What came of an ``ActivityControl``.
public struct ActivityControlOutcome: Sendable, Equatable {
    /// Whether anything changed: false for a pause of a paused step, say.
    public var changed: Bool
    public var message: String
}

/// What a control does, decided from the journal (``WorkflowCoordinator/activityControl(_:at:in:workflowID:)``).
struct ActivityControlDecision: Sendable {
    var events: [WorkflowEvent] = []
    /// The message the step leaves: its attempt is asked to stop when `cancelsAttempt`
    /// (a pause stopped it already).
    var stop: (stepKey: String, queue: String)?
    var cancelsAttempt = true
    var stopReason = ""
    /// The key the step is sent again under.
    var resent: String?
    var outcome: ActivityControlOutcome
}

/// The attempt a step sent again after an unpause goes on from, and the details its last
/// attempt reported (the `flow-attempt` and `flow-last-heartbeat` headers of its request).
struct CarriedAttempt: Sendable, Equatable {
    var attempt: Int
    var heartbeat: JSONText?
}

extension WorkflowJournal {
    /// The key a step is sent again under: `echo@3` becomes `echo#2@3`, `echo#2@3` becomes
    /// `echo#3@3`. The position stays last, where ``position(ofStep:)`` reads it.
    public static func resentKey(after key: String) -> String {
        guard let at = key.lastIndex(of: "@") else { return key + "#2" }
        var prefix = String(key[..<at])
        let position = key[at...]
        var sends = 2
        if let hash = prefix.lastIndex(of: "#"), let count = Int(prefix[prefix.index(after: hash)...]) {
            sends = count + 1
            prefix = String(prefix[..<hash])
        }
        return "\(prefix)#\(sends)\(position)"
    }
}
