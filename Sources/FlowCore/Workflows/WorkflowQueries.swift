import Foundation

/// The read-only questions the coordinator answers on `workflow-commands`, beside the
/// commands (`docs/protocol.md`, "Queries"). Any AMQP client can ask them: set the AMQP
/// `type` to the query's name and a `reply_to`; the answer comes there with the same
/// `correlation_id` and the AMQP `type` ``WorkflowQuery/answerType``.
///
/// A query changes nothing, so asking twice is harmless. A query the coordinator cannot
/// answer (a malformed body, an unknown workflow) is answered with a ``CommandAnswer`` whose
/// `accepted` is false; it is not dead-lettered, since there is nothing to replay.
public enum WorkflowQuery {
    public enum Kind: String, Sendable, CaseIterable {
        case list = "flow.workflow.list"
        case describe = "flow.workflow.describe"
        case history = "flow.workflow.history"
        case journal = "flow.workflow.journal"
        case schedules = "flow.schedule.list"
        /// A query a workflow's code answers from its state (``Ask``).
        case workflowState = "flow.workflow.query"
    }

    /// The AMQP `type` of every answer to a query.
    public static let answerType = "flow.query.result"

    /// The most a page holds, whatever `limit` asks for.
    public static let maximumPageSize = 500

    /// `flow.workflow.list`: workflows, newest first, a page at a time.
    public struct List: Codable, Sendable, Equatable {
        /// Only these statuses; all when absent or empty.
        public var statuses: [WorkflowStatus]?
        /// Only workflows of this name.
        public var name: String?
        public var startedAfter: Date?
        public var startedBefore: Date?
        /// Only ids containing this text (case-sensitive).
        public var idContains: String?
        /// At most this many (default 50, at most ``WorkflowQuery/maximumPageSize``).
        public var limit: Int?
        /// The `next_page` of the previous answer.
        public var page: String?
        /// A filter in words (``WorkflowWhere``): `status = parked AND document_format = "pdf"`.
        public var `where`: String?

        public init(
            statuses: [WorkflowStatus]? = nil, name: String? = nil, startedAfter: Date? = nil, startedBefore: Date? = nil, idContains: String? = nil, limit: Int? = nil,
            page: String? = nil, where: String? = nil
        ) {
            self.statuses = statuses
            self.name = name
            self.startedAfter = startedAfter
            self.startedBefore = startedBefore
            self.idContains = idContains
            self.limit = limit
            self.page = page
            self.where = `where`
        }
    }

    /// `flow.workflow.query`: asks a workflow's code a question it declared
    /// (`QueryDeclaration`), answered from its state as it stands, without changing it.
    /// The answer is a ``WorkflowQueryResult``.
    public struct Ask: Codable, Sendable, Equatable {
        public var workflowID: String
        /// The query's name.
        public var name: String

        public init(workflowID: String, name: String) {
            self.workflowID = workflowID
            self.name = name
        }
    }

    /// `flow.workflow.describe`: one workflow with its input, output and steps.
    public struct Describe: Codable, Sendable, Equatable {
        public var workflowID: String

        public init(workflowID: String) { self.workflowID = workflowID }
    }

    /// `flow.workflow.history`: a workflow's events, oldest first, a page at a time.
    public struct History: Codable, Sendable, Equatable {
        public var workflowID: String
        /// Only events after this sequence number (the `next_after` of the previous page).
        public var after: Int64?
        /// At most this many (default 200, at most ``WorkflowQuery/maximumPageSize``).
        public var limit: Int?

        public init(workflowID: String, after: Int64? = nil, limit: Int? = nil) {
            self.workflowID = workflowID
            self.after = after
            self.limit = limit
        }
    }

    /// `flow.workflow.journal`: a workflow's journal, the events its state follows from,
    /// oldest first, a page at a time. Its body is a history query's (`after` counts
    /// journal sequence numbers, default limit 200).
    public typealias Journal = History

    /// `flow.schedule.list`: every schedule. The body may be `{}`.
    public struct Schedules: Codable, Sendable, Equatable {
        public init() {}
    }
}

/// A workflow in a list: where it stands, without its input and output.
public struct WorkflowSummary: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var status: WorkflowStatus
    public var parkedReason: String?
    public var cancelRequested: Bool
    public var startedAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?
    /// For a run that a later run replaced (a continue-as-new or a reset), kept as
    /// `<id>@run-<n>`: the workflow id it was a run of. Absent for a workflow's current run.
    public var runOf: String?

    public init(
        id: String, name: String, status: WorkflowStatus, parkedReason: String? = nil, cancelRequested: Bool, startedAt: Date, updatedAt: Date, finishedAt: Date? = nil,
        runOf: String? = nil
    ) {
        self.runOf = runOf
        self.id = id
        self.name = name
        self.status = status
        self.parkedReason = parkedReason
        self.cancelRequested = cancelRequested
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }
}

/// The answer to `flow.workflow.list`.
public struct WorkflowPage: Codable, Sendable, Equatable {
    public var `protocol`: Int64
    public var workflows: [WorkflowSummary]
    /// How many workflows match the filters, over every page.
    public var total: Int
    /// Ask again with this `page` for the next page; absent on the last.
    public var nextPage: String?

    public init(workflows: [WorkflowSummary], total: Int, nextPage: String?) {
        self.protocol = FlowProtocol.version
        self.workflows = workflows
        self.total = total
        self.nextPage = nextPage
    }
}

/// One step (activity call) of a described workflow.
public struct StepSummary: Codable, Sendable, Equatable {
    public var messageID: String
    public var stepKey: String
    public var activity: String
    public var queue: String
    /// `scheduled`, `completed`, `failed` or `parked`.
    public var status: String
    /// The worker's attempt in the last reply (0 before the first).
    public var attempt: Int
    /// How many times the request was sent.
    public var sends: Int
    public var scheduledAt: Date
    public var sentAt: Date?
    public var lastHeardAt: Date?
    public var input: JSONText
    public var output: JSONText?
    public var error: ActivityFailure?

    public init(messageID: String, stepKey: String, activity: String, queue: String, status: String, attempt: Int, sends: Int, scheduledAt: Date, sentAt: Date?, lastHeardAt: Date?, input: JSONText, output: JSONText?, error: ActivityFailure?) {
        self.messageID = messageID
        self.stepKey = stepKey
        self.activity = activity
        self.queue = queue
        self.status = status
        self.attempt = attempt
        self.sends = sends
        self.scheduledAt = scheduledAt
        self.sentAt = sentAt
        self.lastHeardAt = lastHeardAt
        self.input = input
        self.output = output
        self.error = error
    }
}

/// The answer to `flow.workflow.describe`.
public struct WorkflowDescription: Codable, Sendable, Equatable {
    public var `protocol`: Int64
    public var workflow: WorkflowSummary
    public var input: JSONText
    public var output: JSONText?
    public var error: ActivityFailure?
    /// In the order they were scheduled.
    public var steps: [StepSummary]
    /// The workflow that started this one as its child, if one did.
    public var parent: ParentSummary?
    /// Why an operator paused it, while it is paused.
    public var pausedBecause: String?
    /// What the workflow filed about itself; absent when nothing.
    public var searchAttributes: [String: SearchAttribute]?
    public var memo: JSONText?
    /// The child workflows it started, in position order; absent when it started none.
    public var children: [ChildSummary]?
    /// Which run of its workflow id this is (1, then one more per continue-as-new or reset).
    public var run: Int?
    /// Every run of its workflow id, first to current, the runs before kept as
    /// `<id>@run-<n>`; absent when it has had one run.
    public var runs: [WorkflowSummary]?
    /// The commands its code issued, by position: what a reset names (`flow workflow reset
    /// ID --to POSITION`).
    public var commands: [CommandSummary]?

    public init(
        workflow: WorkflowSummary, input: JSONText, output: JSONText?, error: ActivityFailure?, steps: [StepSummary], parent: ParentSummary? = nil,
        children: [ChildSummary]? = nil, searchAttributes: [String: SearchAttribute]? = nil, memo: JSONText? = nil
    ) {
        self.searchAttributes = searchAttributes
        self.memo = memo
        self.protocol = FlowProtocol.version
        self.workflow = workflow
        self.input = input
        self.output = output
        self.error = error
        self.steps = steps
        self.parent = parent
        self.children = children
    }
}

/// One command of a workflow's code, in a ``WorkflowDescription``.
public struct CommandSummary: Codable, Sendable, Equatable {
    public var position: Int
    /// `activity`, `timer`, `marker` or `child`.
    public var kind: String
    /// The activity's, marker's or child workflow's name, or the timer's key.
    public var name: String
    /// `waiting`, `completed`, `failed`, `parked`, `fired` or `recorded`.
    public var status: String

    public init(position: Int, kind: String, name: String, status: String) {
        self.position = position
        self.kind = kind
        self.name = name
        self.status = status
    }
}

/// A child workflow's parent, in a ``WorkflowDescription``.
public struct ParentSummary: Codable, Sendable, Equatable {
    public var workflowID: String
    /// The position of the parent's command that started the child.
    public var position: Int

    public init(workflowID: String, position: Int) {
        self.workflowID = workflowID
        self.position = position
    }
}

/// A child workflow as its parent's journal has it, in a ``WorkflowDescription``.
public struct ChildSummary: Codable, Sendable, Equatable {
    public var workflowID: String
    public var workflow: String
    public var position: Int
    /// `running` until its end is in the parent's journal, then `completed` or `failed`.
    public var status: String
    /// What becomes of it when the parent ends first.
    public var parentClosePolicy: String

    public init(workflowID: String, workflow: String, position: Int, status: String, parentClosePolicy: String) {
        self.workflowID = workflowID
        self.workflow = workflow
        self.position = position
        self.status = status
        self.parentClosePolicy = parentClosePolicy
    }
}

/// One event of a workflow's history.
public struct WorkflowHistoryEvent: Codable, Sendable, Equatable {
    /// Increases with every event the store records, across workflows.
    public var sequence: Int64
    public var at: Date
    /// What happened: `workflow started`, `activity sent`, `workflow parked`, ….
    public var kind: String
    public var stepKey: String?
    public var detail: String

    public init(sequence: Int64, at: Date, kind: String, stepKey: String?, detail: String) {
        self.sequence = sequence
        self.at = at
        self.kind = kind
        self.stepKey = stepKey
        self.detail = detail
    }
}

/// The answer to `flow.workflow.history`.
public struct WorkflowHistoryPage: Codable, Sendable, Equatable {
    public var `protocol`: Int64
    public var workflowID: String
    public var events: [WorkflowHistoryEvent]
    /// Ask again with this `after` for the next page; absent on the last.
    public var nextAfter: Int64?

    public init(workflowID: String, events: [WorkflowHistoryEvent], nextAfter: Int64?) {
        self.protocol = FlowProtocol.version
        self.workflowID = workflowID
        self.events = events
        self.nextAfter = nextAfter
    }
}

/// A schedule, with what its last run became.
public struct ScheduleSummary: Codable, Sendable, Equatable {
    public var name: String
    public var workflow: String
    public var input: JSONText
    public var everySeconds: Int64?
    public var cron: String?
    public var nextRunAt: Date
    public var lastRunAt: Date?
    public var runs: Int
    /// The workflow the last run started, and its status now.
    public var lastWorkflowID: String?
    public var lastStatus: WorkflowStatus?
    /// Its policy (absent from answers of coordinators before them): the overlap policy,
    /// the catch-up window and jitter in seconds, whether it is paused and why, how many
    /// runs wait for the previous one, and how many due runs it skipped.
    public var overlap: String?
    public var catchupWindowSeconds: Int64?
    public var jitterSeconds: Int64?
    public var paused: Bool?
    public var pauseNote: String?
    public var waiting: Int?
    public var skipped: Int?

    public init(
        name: String, workflow: String, input: JSONText, everySeconds: Int64?, cron: String?, nextRunAt: Date, lastRunAt: Date?, runs: Int, lastWorkflowID: String?,
        lastStatus: WorkflowStatus?, overlap: String? = nil, catchupWindowSeconds: Int64? = nil, jitterSeconds: Int64? = nil, paused: Bool? = nil,
        pauseNote: String? = nil, waiting: Int? = nil, skipped: Int? = nil
    ) {
        self.overlap = overlap
        self.catchupWindowSeconds = catchupWindowSeconds
        self.jitterSeconds = jitterSeconds
        self.paused = paused
        self.pauseNote = pauseNote
        self.waiting = waiting
        self.skipped = skipped
        self.name = name
        self.workflow = workflow
        self.input = input
        self.everySeconds = everySeconds
        self.cron = cron
        self.nextRunAt = nextRunAt
        self.lastRunAt = lastRunAt
        self.runs = runs
        self.lastWorkflowID = lastWorkflowID
        self.lastStatus = lastStatus
    }
}

/// The answer to `flow.schedule.list`.
public struct ScheduleList: Codable, Sendable, Equatable {
    public var `protocol`: Int64
    public var schedules: [ScheduleSummary]

    public init(schedules: [ScheduleSummary]) {
        self.protocol = FlowProtocol.version
        self.schedules = schedules
    }
}

/// The answer to `flow.workflow.journal`.
public struct WorkflowJournalPage: Codable, Sendable, Equatable {
    public var `protocol`: Int64
    public var workflowID: String
    /// The workflow's name.
    public var workflow: String
    /// Journal entries as the coordinator records them (`sequence`, `epoch`,
    /// `recorded_at`, `event`; docs/workflows.md, "The journal").
    public var events: [JSONText]
    /// Ask again with this `after` for the next page; absent on the last.
    public var nextAfter: Int64?

    public init(workflowID: String, workflow: String, events: [JSONText], nextAfter: Int64?) {
        self.protocol = FlowProtocol.version
        self.workflowID = workflowID
        self.workflow = workflow
        self.events = events
        self.nextAfter = nextAfter
    }
}

/// The answer to `flow.workflow.query`: what the workflow's query handler returned.
public struct WorkflowQueryResult: Codable, Sendable, Equatable {
    public var `protocol`: Int64
    public var workflowID: String
    public var name: String
    public var output: JSONText

    public init(workflowID: String, name: String, output: JSONText) {
        self.protocol = FlowProtocol.version
        self.workflowID = workflowID
        self.name = name
        self.output = output
    }
}
