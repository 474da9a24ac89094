import Foundation

/// The messages that start, cancel and answer workflows on the `workflow-commands` queue
/// (`docs/protocol.md`, "Workflows"). Any AMQP client can send them.
public enum WorkflowCommand {
    /// Values of the AMQP `type` property of a command.
    public enum Kind: String, Sendable, CaseIterable {
        case start = "flow.workflow.start"
        case cancel = "flow.workflow.cancel"
        case signal = "flow.workflow.signal"
        case update = "flow.workflow.update"
        case pause = "flow.workflow.pause"
        case unpause = "flow.workflow.unpause"
        case reset = "flow.workflow.reset"
        case pauseActivity = "flow.activity.pause"
        case unpauseActivity = "flow.activity.unpause"
        case resetActivity = "flow.activity.reset"
        case addSchedule = "flow.schedule.add"
        case removeSchedule = "flow.schedule.remove"
        case pauseSchedule = "flow.schedule.pause"
        case resumeSchedule = "flow.schedule.resume"
        case backfillSchedule = "flow.schedule.backfill"
    }

    /// What any command names: its workflow, or (schedule commands) its schedule's name.
    /// Read before the command itself, to keep one workflow's commands in order.
    public struct Target: Decodable, Sendable, Equatable {
        public var workflowID: String?
        public var name: String?
    }

    /// The body of `flow.workflow.start`. Without `workflow_id` the message id names the
    /// workflow; a second start with an id already used runs nothing and is answered with
    /// that workflow's result.
    public struct Start: Codable, Sendable, Equatable {
        public var workflow: String
        public var workflowID: String?
        public var input: JSONText?

        public init(workflow: String, workflowID: String? = nil, input: JSONText? = nil) {
            self.workflow = workflow
            self.workflowID = workflowID
            self.input = input
        }
    }

    /// The body of `flow.workflow.cancel`.
    public struct Cancel: Codable, Sendable, Equatable {
        public var workflowID: String
        public var reason: String?
        /// End it at once, with no cleanup, rather than cancel its code (docs/workflows.md).
        public var terminate: Bool?

        public init(workflowID: String, reason: String? = nil, terminate: Bool? = nil) {
            self.workflowID = workflowID
            self.reason = reason
            self.terminate = terminate
        }
    }

    /// The body of `flow.workflow.pause` and `flow.workflow.unpause`.
    public struct Pause: Codable, Sendable, Equatable {
        public var workflowID: String
        /// Why, for its history (a pause only).
        public var reason: String?

        public init(workflowID: String, reason: String? = nil) {
            self.workflowID = workflowID
            self.reason = reason
        }
    }

    /// The body of `flow.workflow.reset`: cut the workflow's journal back to just before
    /// command `position` into a new run, which runs that command and what follows again
    /// (docs/workflows.md, "Reset"). Signals recorded after the cut are kept unless
    /// `drop_signals`. `reset_id` (else the AMQP message id) makes a command sent again
    /// reset once.
    public struct Reset: Codable, Sendable, Equatable {
        public var workflowID: String
        public var position: Int
        public var dropSignals: Bool?
        /// Why, for its history.
        public var reason: String?
        public var resetID: String?

        public init(workflowID: String, position: Int, dropSignals: Bool? = nil, reason: String? = nil, resetID: String? = nil) {
            self.workflowID = workflowID
            self.position = position
            self.dropSignals = dropSignals
            self.reason = reason
            self.resetID = resetID
        }
    }

    /// The body of `flow.activity.pause`, `flow.activity.unpause` and `flow.activity.reset`:
    /// the activity at command `position` of a running workflow (docs/workflows.md,
    /// "Pausing and resetting an activity").
    public struct ActivityCommand: Codable, Sendable, Equatable {
        public var workflowID: String
        public var position: Int
        /// Why, for its history (a pause only).
        public var reason: String?

        public init(workflowID: String, position: Int, reason: String? = nil) {
            self.workflowID = workflowID
            self.position = position
            self.reason = reason
        }
    }

    /// The body of `flow.workflow.signal`: a named message with an input for a running
    /// workflow, recorded in its journal before the command is acknowledged and handed to
    /// its code once, in the order signals were recorded. `signal_id` (else the AMQP
    /// message id) makes a command that is sent again count once. With `start_workflow`,
    /// a workflow that does not exist is started first with `start_input`
    /// (signal-with-start).
    public struct Signal: Codable, Sendable, Equatable {
        public var workflowID: String
        public var name: String
        public var input: JSONText?
        public var signalID: String?
        public var startWorkflow: String?
        public var startInput: JSONText?

        public init(workflowID: String, name: String, input: JSONText? = nil, signalID: String? = nil, startWorkflow: String? = nil, startInput: JSONText? = nil) {
            self.workflowID = workflowID
            self.name = name
            self.input = input
            self.signalID = signalID
            self.startWorkflow = startWorkflow
            self.startInput = startInput
        }
    }

    /// The body of `flow.workflow.update`: a change for a running workflow, which its
    /// validator accepts or rejects (a rejected update leaves no trace) and its handler
    /// applies; the answer (``WorkflowUpdateResult``) carries the handler's result.
    /// `update_id` (else the AMQP message id) makes an update sent again apply once, and
    /// be answered with the first result. With `start_workflow`, a workflow that does not
    /// exist is started first (update-with-start).
    public struct Update: Codable, Sendable, Equatable {
        public var workflowID: String
        public var name: String
        public var input: JSONText?
        public var updateID: String?
        public var startWorkflow: String?
        public var startInput: JSONText?

        public init(workflowID: String, name: String, input: JSONText? = nil, updateID: String? = nil, startWorkflow: String? = nil, startInput: JSONText? = nil) {
            self.workflowID = workflowID
            self.name = name
            self.input = input
            self.updateID = updateID
            self.startWorkflow = startWorkflow
            self.startInput = startInput
        }
    }

    /// The body of `flow.schedule.add`: exactly one of `every_seconds` and `cron`.
    public struct AddSchedule: Codable, Sendable, Equatable {
        public var name: String
        public var workflow: String
        public var input: JSONText?
        public var everySeconds: Int64?
        public var cron: String?
        /// `skip` (the default), `buffer_one`, `buffer_all`, `cancel_other` or `allow_all`.
        public var overlap: String?
        /// A run found due later than this is skipped; absent: it runs however late.
        public var catchupWindowSeconds: Int64?
        /// Each run starts up to this much after its time.
        public var jitterSeconds: Int64?
        /// Added paused: it starts nothing until resumed.
        public var paused: Bool?

        public init(
            name: String, workflow: String, input: JSONText? = nil, everySeconds: Int64? = nil, cron: String? = nil, overlap: String? = nil,
            catchupWindowSeconds: Int64? = nil, jitterSeconds: Int64? = nil, paused: Bool? = nil
        ) {
            self.name = name
            self.workflow = workflow
            self.input = input
            self.everySeconds = everySeconds
            self.cron = cron
            self.overlap = overlap
            self.catchupWindowSeconds = catchupWindowSeconds
            self.jitterSeconds = jitterSeconds
            self.paused = paused
        }
    }

    /// The body of `flow.schedule.pause` and `flow.schedule.resume`.
    public struct PauseSchedule: Codable, Sendable, Equatable {
        public var name: String
        /// Why it is paused, shown in lists.
        public var note: String?

        public init(name: String, note: String? = nil) {
            self.name = name
            self.note = note
        }
    }

    /// The body of `flow.schedule.backfill`: start the runs due after `from` up to and
    /// including `to` (at most 1,000), as if the schedule had run then.
    public struct BackfillSchedule: Codable, Sendable, Equatable {
        public var name: String
        public var from: Date
        public var to: Date

        public init(name: String, from: Date, to: Date) {
            self.name = name
            self.from = from
            self.to = to
        }
    }

    /// The body of `flow.schedule.remove`.
    public struct RemoveSchedule: Codable, Sendable, Equatable {
        public var name: String

        public init(name: String) { self.name = name }
    }
}

/// Where a workflow stands.
public enum WorkflowStatus: String, Codable, Sendable, CaseIterable {
    /// Running, or waiting for activity replies or a timer.
    case running
    /// A step's message is in the dead-letter queue; replaying it (or cancelling) resolves it.
    case parked
    case completed
    case failed
    case cancelled
    /// This run handed over to the next run of the same workflow id, which carries its
    /// state forward (continue-as-new); it is kept as `<id>@run-<n>`.
    case continuedAsNew = "continued_as_new"
    /// An operator reset the workflow to a position: this run was cut off there and the
    /// next run of the same id goes on from it; it is kept as `<id>@run-<n>`.
    case reset

    public var isFinished: Bool { self != .running && self != .parked }
}

/// What the coordinator sends to a start command's `reply_to` when the workflow ends
/// (AMQP `type` `flow.workflow.result`), and to a command it cannot take.
public struct WorkflowResult: Codable, Sendable, Equatable {
    public static let messageType = "flow.workflow.result"

    public var `protocol`: Int64
    public var status: WorkflowStatus
    public var workflow: String
    public var workflowID: String
    public var output: JSONText?
    public var error: ActivityFailure?

    public init(status: WorkflowStatus, workflow: String, workflowID: String, output: JSONText? = nil, error: ActivityFailure? = nil) {
        self.protocol = FlowProtocol.version
        self.status = status
        self.workflow = workflow
        self.workflowID = workflowID
        self.output = output
        self.error = error
    }
}

/// What the coordinator sends to the `reply_to` of a cancel or schedule command, and of
/// any command it cannot take (AMQP `type` `flow.command.answer`).
public struct CommandAnswer: Codable, Sendable, Equatable {
    public static let messageType = "flow.command.answer"

    public var `protocol`: Int64
    public var accepted: Bool
    /// The command's AMQP `type`.
    public var command: String
    /// What was done, or why nothing was, for a person.
    public var message: String

    public init(accepted: Bool, command: String, message: String) {
        self.protocol = FlowProtocol.version
        self.accepted = accepted
        self.command = command
        self.message = message
    }
}

/// The answer to `flow.workflow.update`. `accepted` is false when nothing was recorded:
/// the validator rejected it, the workflow has ended or does not run. When it is true,
/// `output` is what the handler returned, or `error` what it threw.
public struct WorkflowUpdateResult: Codable, Sendable, Equatable {
    public static let messageType = "flow.workflow.update.result"

    public var `protocol`: Int64
    public var workflowID: String
    public var name: String
    public var updateID: String
    public var accepted: Bool
    public var output: JSONText?
    public var error: ActivityFailure?

    public init(workflowID: String, name: String, updateID: String, accepted: Bool, output: JSONText? = nil, error: ActivityFailure? = nil) {
        self.protocol = FlowProtocol.version
        self.workflowID = workflowID
        self.name = name
        self.updateID = updateID
        self.accepted = accepted
        self.output = output
        self.error = error
    }
}
