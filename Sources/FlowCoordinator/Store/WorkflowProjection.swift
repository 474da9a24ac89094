import FlowCore
import Foundation

/// What the projections show of each event and note, written once for every store: the
/// history lines people read, and the texts of a workflow's parked reason. A store keeps
/// its projections in its own way, but every line and reason comes from here, so the
/// conformance suite can hold all stores to the same output.
package enum WorkflowProjection {
    /// One line of a workflow's history.
    package struct Line: Sendable, Equatable {
        package var kind: HistoryEvent.Kind
        package var stepKey: String?
        package var detail: String

        package init(kind: HistoryEvent.Kind, stepKey: String?, detail: String) {
            self.kind = kind
            self.stepKey = stepKey
            self.detail = detail
        }
    }

    /// The lines an event adds. `stepKey` is the key of the step or timer the event
    /// concerns; `activity` the step's activity. A change of the workflow's status is a
    /// line of its own (``statusLine(from:to:reason:cause:)``).
    package static func lines(for event: WorkflowEvent, stepKey: String?) -> [Line] {
        switch event {
        case .workflowStarted(let name, let input):
            return [Line(kind: .workflowStarted, stepKey: nil, detail: "\(name) with input \(input.text.prefix(500))")]
        case .activityScheduled(let scheduled):
            return [Line(kind: .activityScheduled, stepKey: scheduled.stepKey, detail: "\(scheduled.activity) on \(scheduled.queue)")]
        case .activityCompleted(_, let attempt, let output):
            return [Line(kind: .activityCompleted, stepKey: stepKey, detail: "attempt \(attempt): \(output.text.prefix(300))")]
        case .activityFailed(_, let attempt, let failure), .activityParked(_, let attempt, let failure):
            return [Line(kind: .activityFailed, stepKey: stepKey, detail: "attempt \(attempt): \(failure)")]
        case .activityTimedOut(_, let failure):
            return [Line(kind: .activityTimedOut, stepKey: stepKey, detail: "\(failure)")]
        case .activityPaused(_, let reason):
            return [Line(kind: .activityPaused, stepKey: stepKey, detail: reason)]
        case .activityResumed(_, let key, let resetAttempts):
            return [Line(kind: .activityResumed, stepKey: key, detail: resetAttempts ? "reset: sent again from attempt 1" : "unpaused: sent again, its attempts counting on")]
        case .timerStarted(_, let key, let fireAt):
            return [Line(kind: .timerStarted, stepKey: key, detail: "fires at \(fireAt.formatted(.iso8601))")]
        case .timerFired:
            return [Line(kind: .timerFired, stepKey: stepKey, detail: "")]
        case .cancelRequested(let reason):
            return [Line(kind: .cancelRequested, stepKey: nil, detail: reason)]
        case .workflowPaused(let reason):
            return [Line(kind: .workflowPaused, stepKey: nil, detail: reason)]
        case .workflowUnpaused:
            return [Line(kind: .workflowUnpaused, stepKey: nil, detail: "")]
        case .childScheduled(let child):
            return [Line(kind: .childStarted, stepKey: child.workflowID, detail: "\(child.workflow) \(child.workflowID) (when this ends first: \(child.parentClosePolicy.rawValue)) with input \(child.input.text.prefix(300))")]
        case .childCompleted(_, let output):
            return [Line(kind: .childCompleted, stepKey: stepKey, detail: "output \(output.text.prefix(300))")]
        case .childFailed(_, let failure):
            return [Line(kind: .childFailed, stepKey: stepKey, detail: "\(failure)")]
        case .signalReceived(let id, let name, let input):
            return [Line(kind: .signalReceived, stepKey: nil, detail: "\(name) (\(id)): \(input.text.prefix(300))")]
        case .updateAccepted(let id, let name, let input):
            return [Line(kind: .updateAccepted, stepKey: nil, detail: "\(name) (\(id)): \(input.text.prefix(300))")]
        case .updateCompleted(let id, let output, let failure):
            return [Line(kind: .updateCompleted, stepKey: nil, detail: "\(id): " + (failure.map { "failed: \($0)" } ?? "\(output?.text.prefix(300) ?? "null")"))]
        case .workflowCompleted(let output):
            return [Line(kind: .workflowCompleted, stepKey: nil, detail: "output \(output.text.prefix(500))")]
        case .workflowFailed(let failure):
            return [Line(kind: .workflowFailed, stepKey: nil, detail: "\(failure)")]
        case .workflowCancelled(let failure):
            return [Line(kind: .workflowCancelled, stepKey: nil, detail: "\(failure)")]
        case .workflowContinuedAsNew(let input):
            return [Line(kind: .workflowContinuedAsNew, stepKey: nil, detail: "the next run starts with input \(input.text.prefix(500))")]
        case .workflowReset(let position, let reason):
            return [Line(kind: .workflowReset, stepKey: nil, detail: "to before command \(position): \(reason)")]
        case .markerRecorded, .replayDiverged, .replayRecovered, .unrecognized:
            return []
        }
    }

    /// The line for a workflow that parked or ran again after `cause`.
    package static func statusLine(from old: WorkflowStatus, to new: WorkflowStatus, reason: String?, cause: WorkflowEvent, stepKey: String?, activity: String?) -> Line? {
        switch (old, new) {
        case (.running, .parked):
            return Line(kind: .workflowParked, stepKey: stepKey, detail: reason ?? "")
        case (.parked, .running):
            if case .replayRecovered = cause { return Line(kind: .workflowUnparked, stepKey: nil, detail: "its code replays its journal again") }
            let outcome = if case .activityCompleted = cause { "completed" } else { "failed" }
            return Line(kind: .workflowUnparked, stepKey: nil, detail: "\(activity ?? "a parked step") \(outcome) after its replay")
        default:
            return nil
        }
    }

    /// How a run that a later run replaced ended, in words.
    /// `closing` is nil for a run that had ended (`status`) before it was reset.
    package static func runEnd(_ closing: WorkflowEvent?, status: WorkflowStatus) -> String {
        switch closing {
        case .workflowContinuedAsNew?: "continued as new"
        case .workflowReset(let position, let reason)?: "was reset to before command \(position): \(reason)"
        default: "had ended (\(status.rawValue)) and was reset"
        }
    }

    /// The marker a workflow's `upsertSearchAttributes` records: a JSON object of attribute
    /// values, null removing one.
    package static let searchAttributesMarker = "search_attributes"
    /// The marker a workflow's `upsertMemo` records: a JSON merge patch of its memo.
    package static let memoMarker = "memo"

    /// The attributes a `search_attributes` marker sets (a value) or removes (nil).
    package static func searchAttributeChanges(_ value: JSONText) throws -> [String: SearchAttribute?] {
        try value.decode([String: SearchAttribute?].self)
    }

    /// How a store keeps a search attribute: a text as text, a number as a number, a truth
    /// value as both (`true` and 1), so each compares in its own kind and reads back as
    /// what it was. Nil for an attribute removed.
    package static func storedAttribute(_ value: SearchAttribute?) -> (text: String?, number: Double?) {
        switch value {
        case .text(let text)?: (text, nil)
        case .number(let number)?: (nil, number)
        case .bool(let bool)?: (String(bool), bool ? 1 : 0)
        case nil: (nil, nil)
        }
    }

    /// Checks what a store's `startNextRun` is handed, the same for every store: an ending
    /// event (or none), and a journal numbered from 1 that starts with `workflow_started`.
    /// Returns the next run's workflow name and input.
    package static func nextRunStart(of workflowID: String, closing: WorkflowEvent?, journal: [JournalEntry]) throws -> (name: String, input: JSONText) {
        guard closing?.isTerminal ?? true, case .workflowStarted(let name, let input)? = journal.first?.event,
            journal.enumerated().allSatisfy({ $0.element.sequence == Int64($0.offset) + 1 })
        else {
            throw WorkflowStoreError(.unreadable, "the next run of \(workflowID) must follow an ending event and start with workflow_started numbered 1: this writer broke the journal's rules")
        }
        return (name, input)
    }

    /// The error of a step its workflow's end left open (``StepStatus/cancelled``).
    package static func abandonedStepError(_ status: WorkflowStatus) -> ActivityFailure {
        .cancelled("its workflow ended (\(status.rawValue)) before this step did")
    }

    /// Why a workflow waits on a dead-lettered step.
    package static func parkedReason(workflowID: String, activity: String, stepKey: String, failure: ActivityFailure) -> String {
        "waiting for dead-letter replay: \(activity) (message \(workflowID)/\(stepKey)) failed: \(failure.description.prefix(300))"
    }

    /// The line a note adds, if any.
    package static func line(for note: DeliveryNote, stepKey: String?) -> Line? {
        switch note {
        case .sent(_, let reason?):
            return Line(kind: .activityResent, stepKey: stepKey, detail: reason)
        case .sent(_, nil):
            return nil
        case .heard(_, let attempt, let details):
            return Line(kind: .activityProgress, stepKey: stepKey, detail: "attempt \(attempt): \(details?.text.prefix(300) ?? "")")
        case .resumed(_, let coordinator):
            return Line(kind: .workflowResumed, stepKey: nil, detail: "by \(coordinator)")
        }
    }

    /// Whether an event changes what the workflow's status or parked reason may be.
    package static func touchesPark(_ event: WorkflowEvent) -> Bool {
        switch event {
        case .activityParked, .replayDiverged, .replayRecovered, .activityPaused, .activityResumed: true
        default: false
        }
    }
}
