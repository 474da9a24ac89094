import FlowCore
import Foundation

/// One fact in a workflow's journal: the ordered, append-only record that a workflow's
/// state is derived from. Events name the commands they answer by **position**, the
/// command's place in the workflow's sequence of commands (activities and timers, counted
/// from 0), not by their input.
///
/// The wire form (the store's `payload` column, `flow workflow show --json`) is a JSON
/// object with a `kind` and the event's fields in snake case. A kind this build does not
/// know, written by a newer one, reads as ``unrecognized(kind:payload:)`` and is kept as
/// it was written, so an older tool can still show and export such a journal.
public enum WorkflowEvent: Sendable, Equatable {
    /// The first event of every journal.
    case workflowStarted(name: String, input: JSONText)
    /// The workflow asked for an activity; its request is sent after this is recorded.
    case activityScheduled(ScheduledActivity)
    case activityCompleted(position: Int, attempt: Int, output: JSONText)
    /// Failed for good, and thrown into the workflow.
    case activityFailed(position: Int, attempt: Int, failure: ActivityFailure)
    /// The coordinator gave up waiting for a reply.
    case activityTimedOut(position: Int, failure: ActivityFailure)
    /// Failed for good and dead-lettered: the workflow waits for a replay of the message,
    /// whose final reply is a later completed or failed event at the same position.
    case activityParked(position: Int, attempt: Int, failure: ActivityFailure)
    /// A durable sleep began; it fires at `fireAt` on the coordinator's clock.
    case timerStarted(position: Int, key: String, fireAt: Date)
    case timerFired(position: Int)
    /// An operator paused the activity at `position`: its running attempt was asked to stop,
    /// and no attempt is made until ``activityResumed(position:stepKey:resetAttempts:)``.
    case activityPaused(position: Int, reason: String)
    /// The activity at `position` is sent again under a new step key (so under a new message
    /// id, which no worker has seen): after an unpause, its attempts counting on; after an
    /// operator's reset (`resetAttempts`), from attempt 1 with no heartbeat details.
    case activityResumed(position: Int, stepKey: String, resetAttempts: Bool)
    /// A value the workflow computed once (`now`, `random`, `uuid()`, `sideEffect`), read
    /// back on every replay instead of being computed again.
    case markerRecorded(position: Int, name: String, value: JSONText)
    case cancelRequested(reason: String)
    /// An operator paused the workflow: no new command is recorded or sent until
    /// ``workflowUnpaused``; what was sent runs on.
    case workflowPaused(reason: String)
    case workflowUnpaused
    /// The workflow started a child workflow; the child is created after this is recorded.
    case childScheduled(ScheduledChild)
    /// The child at `position` completed with `output`.
    case childCompleted(position: Int, output: JSONText)
    /// The child at `position` failed, was cancelled or terminated, or could not start.
    case childFailed(position: Int, failure: ActivityFailure)
    /// A signal for the workflow, recorded before its sender was answered; its code
    /// receives signals in this order. `id` makes a signal sent again count once.
    case signalReceived(id: String, name: String, input: JSONText)
    /// An update its validator accepted, recorded before its handler runs; a replay runs
    /// the handler again at this point. `id` makes an update sent again count once.
    case updateAccepted(id: String, name: String, input: JSONText)
    /// What the handler of update `id` returned (`output`) or threw (`failure`): the answer
    /// to a sender that asks again.
    case updateCompleted(id: String, output: JSONText?, failure: ActivityFailure?)
    /// The workflow's code did not replay this journal: the workflow is parked, and
    /// nothing runs until code that replays it takes it up (``replayRecovered``).
    case replayDiverged(reason: String)
    /// Code that replays the journal took a diverged workflow up again.
    case replayRecovered
    case workflowCompleted(output: JSONText)
    case workflowFailed(failure: ActivityFailure)
    case workflowCancelled(failure: ActivityFailure)
    /// The run ended by handing over to the next run of the same workflow id, which starts
    /// with `input` (continue-as-new). The last event of the run's journal.
    case workflowContinuedAsNew(input: JSONText)
    /// An operator reset the workflow to command `position`: this run ends here, and the
    /// next run of the same id starts from a copy of its journal cut back to before that
    /// command. The last event of the run's journal.
    case workflowReset(position: Int, reason: String)
    /// An event of a kind this build does not know, as it was written.
    case unrecognized(kind: String, payload: JSONText)

    /// An activity call as the journal records it.
    public struct ScheduledActivity: Sendable, Equatable, Codable {
        public var position: Int
        public var activity: String
        /// The queue the request is sent to, by name.
        public var queue: String
        public var input: JSONText
        public var options: ActivityOptions
        /// The step's key in the store's step rows (`<activity>#<input digest>#<n>`), and so
        /// the last part of its message id. Kept while the step rows still stand beside
        /// the journal.
        public var stepKey: String

        public init(position: Int, activity: String, queue: String, input: JSONText, options: ActivityOptions, stepKey: String) {
            self.position = position
            self.activity = activity
            self.queue = queue
            self.input = input
            self.options = options
            self.stepKey = stepKey
        }
    }

    /// A child workflow as the journal records it.
    public struct ScheduledChild: Sendable, Equatable, Codable {
        public var position: Int
        /// The child's workflow name.
        public var workflow: String
        /// The child's workflow id.
        public var workflowID: String
        public var input: JSONText
        /// What becomes of the child when this workflow ends first.
        public var parentClosePolicy: ParentClosePolicy

        public init(position: Int, workflow: String, workflowID: String, input: JSONText, parentClosePolicy: ParentClosePolicy) {
            self.position = position
            self.workflow = workflow
            self.workflowID = workflowID
            self.input = input
            self.parentClosePolicy = parentClosePolicy
        }
    }

    /// The event's kind as the wire form names it.
    public var kind: String {
        switch self {
        case .workflowStarted: "workflow_started"
        case .activityScheduled: "activity_scheduled"
        case .activityCompleted: "activity_completed"
        case .activityFailed: "activity_failed"
        case .activityTimedOut: "activity_timed_out"
        case .activityParked: "activity_parked"
        case .activityPaused: "activity_paused"
        case .activityResumed: "activity_resumed"
        case .timerStarted: "timer_started"
        case .timerFired: "timer_fired"
        case .markerRecorded: "marker_recorded"
        case .cancelRequested: "cancel_requested"
        case .workflowPaused: "workflow_paused"
        case .workflowUnpaused: "workflow_unpaused"
        case .childScheduled: "child_scheduled"
        case .childCompleted: "child_completed"
        case .childFailed: "child_failed"
        case .signalReceived: "signal_received"
        case .updateAccepted: "update_accepted"
        case .updateCompleted: "update_completed"
        case .replayDiverged: "replay_diverged"
        case .replayRecovered: "replay_recovered"
        case .workflowCompleted: "workflow_completed"
        case .workflowFailed: "workflow_failed"
        case .workflowCancelled: "workflow_cancelled"
        case .workflowContinuedAsNew: "workflow_continued_as_new"
        case .workflowReset: "workflow_reset"
        case .unrecognized(let kind, _): kind
        }
    }

    /// The position of the command the event opens or answers, if it concerns one.
    public var position: Int? {
        switch self {
        case .activityScheduled(let scheduled): scheduled.position
        case .activityCompleted(let position, _, _), .activityFailed(let position, _, _), .activityTimedOut(let position, _),
            .activityParked(let position, _, _), .timerStarted(let position, _, _), .timerFired(let position), .markerRecorded(let position, _, _),
            .childCompleted(let position, _), .childFailed(let position, _), .activityPaused(let position, _), .activityResumed(let position, _, _):
            position
        case .childScheduled(let child): child.position
        case .workflowStarted, .cancelRequested, .workflowPaused, .workflowUnpaused, .signalReceived, .updateAccepted, .updateCompleted, .replayDiverged, .replayRecovered, .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowContinuedAsNew, .workflowReset, .unrecognized:
            nil
        }
    }

    /// Whether the event ends the workflow: nothing may follow it.
    public var isTerminal: Bool {
        switch self {
        case .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowContinuedAsNew, .workflowReset: true
        default: false
        }
    }
}

extension WorkflowEvent: Codable {
    private enum Key: String, CodingKey {
        case kind, name, input, scheduled, position, attempt, output, failure, key, fireAt, reason, value, id, child, stepKey, resetAttempts
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let kind = try container.decode(String.self, forKey: .kind)
        switch kind {
        case "workflow_started":
            self = .workflowStarted(name: try container.decode(String.self, forKey: .name), input: try container.decode(JSONText.self, forKey: .input))
        case "activity_scheduled":
            self = .activityScheduled(try container.decode(ScheduledActivity.self, forKey: .scheduled))
        case "activity_completed":
            self = .activityCompleted(
                position: try container.decode(Int.self, forKey: .position), attempt: try container.decode(Int.self, forKey: .attempt),
                output: try container.decode(JSONText.self, forKey: .output)
            )
        case "activity_failed":
            self = .activityFailed(
                position: try container.decode(Int.self, forKey: .position), attempt: try container.decode(Int.self, forKey: .attempt),
                failure: try container.decode(ActivityFailure.self, forKey: .failure)
            )
        case "activity_timed_out":
            self = .activityTimedOut(position: try container.decode(Int.self, forKey: .position), failure: try container.decode(ActivityFailure.self, forKey: .failure))
        case "activity_parked":
            self = .activityParked(
                position: try container.decode(Int.self, forKey: .position), attempt: try container.decode(Int.self, forKey: .attempt),
                failure: try container.decode(ActivityFailure.self, forKey: .failure)
            )
        case "activity_paused":
            self = .activityPaused(position: try container.decode(Int.self, forKey: .position), reason: try container.decode(String.self, forKey: .reason))
        case "activity_resumed":
            self = .activityResumed(
                position: try container.decode(Int.self, forKey: .position), stepKey: try container.decode(String.self, forKey: .stepKey),
                resetAttempts: try container.decode(Bool.self, forKey: .resetAttempts)
            )
        case "timer_started":
            self = .timerStarted(
                position: try container.decode(Int.self, forKey: .position), key: try container.decode(String.self, forKey: .key),
                fireAt: try container.decode(Date.self, forKey: .fireAt)
            )
        case "timer_fired":
            self = .timerFired(position: try container.decode(Int.self, forKey: .position))
        case "marker_recorded":
            self = .markerRecorded(
                position: try container.decode(Int.self, forKey: .position), name: try container.decode(String.self, forKey: .name),
                value: try container.decode(JSONText.self, forKey: .value)
            )
        case "cancel_requested":
            self = .cancelRequested(reason: try container.decode(String.self, forKey: .reason))
        case "workflow_paused":
            self = .workflowPaused(reason: try container.decode(String.self, forKey: .reason))
        case "workflow_unpaused":
            self = .workflowUnpaused
        case "signal_received":
            self = .signalReceived(
                id: try container.decode(String.self, forKey: .id), name: try container.decode(String.self, forKey: .name),
                input: try container.decode(JSONText.self, forKey: .input)
            )
        case "update_accepted":
            self = .updateAccepted(
                id: try container.decode(String.self, forKey: .id), name: try container.decode(String.self, forKey: .name),
                input: try container.decode(JSONText.self, forKey: .input)
            )
        case "update_completed":
            self = .updateCompleted(
                id: try container.decode(String.self, forKey: .id), output: try container.decodeIfPresent(JSONText.self, forKey: .output),
                failure: try container.decodeIfPresent(ActivityFailure.self, forKey: .failure)
            )
        case "child_scheduled":
            self = .childScheduled(try container.decode(ScheduledChild.self, forKey: .child))
        case "child_completed":
            self = .childCompleted(position: try container.decode(Int.self, forKey: .position), output: try container.decode(JSONText.self, forKey: .output))
        case "child_failed":
            self = .childFailed(position: try container.decode(Int.self, forKey: .position), failure: try container.decode(ActivityFailure.self, forKey: .failure))
        case "replay_diverged":
            self = .replayDiverged(reason: try container.decode(String.self, forKey: .reason))
        case "replay_recovered":
            self = .replayRecovered
        case "workflow_completed":
            self = .workflowCompleted(output: try container.decode(JSONText.self, forKey: .output))
        case "workflow_failed":
            self = .workflowFailed(failure: try container.decode(ActivityFailure.self, forKey: .failure))
        case "workflow_cancelled":
            self = .workflowCancelled(failure: try container.decode(ActivityFailure.self, forKey: .failure))
        case "workflow_continued_as_new":
            self = .workflowContinuedAsNew(input: try container.decode(JSONText.self, forKey: .input))
        case "workflow_reset":
            self = .workflowReset(position: try container.decode(Int.self, forKey: .position), reason: try container.decode(String.self, forKey: .reason))
        default:
            self = .unrecognized(kind: kind, payload: try decoder.singleValueContainer().decode(JSONText.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        if case .unrecognized(_, let payload) = self {
            // Written back exactly as it was read, kind included.
            var container = encoder.singleValueContainer()
            try container.encode(payload)
            return
        }
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(kind, forKey: .kind)
        switch self {
        case .workflowStarted(let name, let input):
            try container.encode(name, forKey: .name)
            try container.encode(input, forKey: .input)
        case .activityScheduled(let scheduled):
            try container.encode(scheduled, forKey: .scheduled)
        case .activityCompleted(let position, let attempt, let output):
            try container.encode(position, forKey: .position)
            try container.encode(attempt, forKey: .attempt)
            try container.encode(output, forKey: .output)
        case .activityFailed(let position, let attempt, let failure), .activityParked(let position, let attempt, let failure):
            try container.encode(position, forKey: .position)
            try container.encode(attempt, forKey: .attempt)
            try container.encode(failure, forKey: .failure)
        case .activityTimedOut(let position, let failure):
            try container.encode(position, forKey: .position)
            try container.encode(failure, forKey: .failure)
        case .timerStarted(let position, let key, let fireAt):
            try container.encode(position, forKey: .position)
            try container.encode(key, forKey: .key)
            try container.encode(fireAt, forKey: .fireAt)
        case .timerFired(let position):
            try container.encode(position, forKey: .position)
        case .activityPaused(let position, let reason):
            try container.encode(position, forKey: .position)
            try container.encode(reason, forKey: .reason)
        case .activityResumed(let position, let stepKey, let resetAttempts):
            try container.encode(position, forKey: .position)
            try container.encode(stepKey, forKey: .stepKey)
            try container.encode(resetAttempts, forKey: .resetAttempts)
        case .markerRecorded(let position, let name, let value):
            try container.encode(position, forKey: .position)
            try container.encode(name, forKey: .name)
            try container.encode(value, forKey: .value)
        case .cancelRequested(let reason), .replayDiverged(let reason), .workflowPaused(let reason):
            try container.encode(reason, forKey: .reason)
        case .replayRecovered, .workflowUnpaused:
            break
        case .childScheduled(let child):
            try container.encode(child, forKey: .child)
        case .childCompleted(let position, let output):
            try container.encode(position, forKey: .position)
            try container.encode(output, forKey: .output)
        case .childFailed(let position, let failure):
            try container.encode(position, forKey: .position)
            try container.encode(failure, forKey: .failure)
        case .signalReceived(let id, let name, let input), .updateAccepted(let id, let name, let input):
            try container.encode(id, forKey: .id)
            try container.encode(name, forKey: .name)
            try container.encode(input, forKey: .input)
        case .updateCompleted(let id, let output, let failure):
            try container.encode(id, forKey: .id)
            try container.encodeIfPresent(output, forKey: .output)
            try container.encodeIfPresent(failure, forKey: .failure)
        case .workflowCompleted(let output):
            try container.encode(output, forKey: .output)
        case .workflowFailed(let failure), .workflowCancelled(let failure):
            try container.encode(failure, forKey: .failure)
        case .workflowContinuedAsNew(let input):
            try container.encode(input, forKey: .input)
        case .workflowReset(let position, let reason):
            try container.encode(position, forKey: .position)
            try container.encode(reason, forKey: .reason)
        case .unrecognized:
            break
        }
    }
}

/// One numbered event of a workflow's journal.
public struct JournalEntry: Sendable, Equatable, Codable {
    /// The event's place in its workflow's journal: 1 for the first, then one more each.
    public var sequence: Int64
    /// The ownership epoch of the coordinator that wrote it. One coordinator per store
    /// never changes it; a store shared by several fences a writer with a stale one.
    public var epoch: Int64
    /// When the coordinator recorded it, on its clock.
    public var recordedAt: Date
    public var event: WorkflowEvent

    public init(sequence: Int64, epoch: Int64, recordedAt: Date, event: WorkflowEvent) {
        self.sequence = sequence
        self.epoch = epoch
        self.recordedAt = recordedAt
        self.event = event
    }
}
