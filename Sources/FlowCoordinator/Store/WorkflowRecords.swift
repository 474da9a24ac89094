import FlowCore
import Foundation

/// A workflow as the coordinator's store keeps it.
public struct WorkflowRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var status: WorkflowStatus
    public var input: JSONText
    public var output: JSONText?
    public var error: ActivityFailure?
    /// Why the workflow is parked, when it is.
    public var parkedReason: String?
    public var cancelRequested: Bool
    public var startedAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?
    /// The W3C trace context (`traceparent`, `tracestate`) of the workflow's span; empty
    /// when it was started without tracing.
    public var traceContext: [String: String]
    /// The workflow that started this one as its child, if one did.
    public var parent: ParentLink?
    /// Which run of its workflow id this is: 1 for the first, one more for each
    /// continue-as-new or reset. The current run has the workflow's id; each run before it
    /// is kept under ``runID(of:run:)``.
    public var run: Int
    /// The workflow id every run of this workflow shares: ``id`` for the current run.
    public var chainID: String
    /// The id of the request that started this run (a reset's), so that the same request
    /// sent again is known and does not start another.
    public var runRequestID: String?

    /// The id a run that a later run replaced is kept under: `<workflow id>@run-<n>`.
    public static func runID(of workflowID: String, run: Int) -> String { "\(workflowID)@run-\(run)" }

    /// What a start command's `reply_to` receives for this workflow once it is finished.
    public var result: WorkflowResult {
        WorkflowResult(status: status, workflow: name, workflowID: id, output: output, error: error)
    }

    public init(id: String, name: String, status: WorkflowStatus, input: JSONText, output: JSONText? = nil, error: ActivityFailure? = nil, parkedReason: String? = nil, cancelRequested: Bool, startedAt: Date, updatedAt: Date, finishedAt: Date? = nil, traceContext: [String: String] = [:], parent: ParentLink? = nil, run: Int = 1, chainID: String? = nil, runRequestID: String? = nil) {
        self.id = id
        self.runRequestID = runRequestID
        self.run = run
        self.chainID = chainID ?? id
        self.name = name
        self.status = status
        self.input = input
        self.output = output
        self.error = error
        self.parkedReason = parkedReason
        self.cancelRequested = cancelRequested
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
        self.traceContext = traceContext
        self.parent = parent
    }
}

/// Where one step (one activity call of a workflow) stands.
public enum StepStatus: String, Sendable, Codable {
    /// Recorded; sent once ``StepRecord/sentAt`` is set; waiting for its final reply.
    case scheduled
    case completed
    /// Failed for good and thrown into the workflow (``ActivityOptions/FinalFailure/throw``),
    /// or given up on by the coordinator.
    case failed
    /// Failed for good and dead-lettered; waiting for an operator to replay the message.
    case parked
    /// Its workflow ended first (cancelled, or done without it); its workers were asked to
    /// stop it, and a result that comes later is not recorded.
    case cancelled
    /// An operator paused it: its attempt was asked to stop, and none is made until it is
    /// unpaused or reset.
    case paused

    var isFinal: Bool { self != .scheduled && self != .parked && self != .paused }
}

/// One activity call of a workflow. Its message id, `<workflow id>/<step key>`, is the
/// idempotency key of every request sent for it.
public struct StepRecord: Sendable, Equatable {
    public var messageID: String
    public var workflowID: String
    public var stepKey: String
    public var activity: String
    /// The queue name the request goes to.
    public var queue: String
    public var input: JSONText
    public var options: ActivityOptions
    public var status: StepStatus
    /// How many times the request was sent (re-sends after a timeout included).
    public var sends: Int
    public var scheduledAt: Date
    /// When the request was last sent and confirmed by the broker.
    public var sentAt: Date?
    /// When the last reply (progress or final) arrived.
    public var lastHeardAt: Date?
    /// The worker's attempt number in the last reply.
    public var attempt: Int
    public var result: JSONText?
    public var error: ActivityFailure?
    /// The details its worker last reported with progress: what an unpaused step's next
    /// attempt starts from (`ActivityContext.lastHeartbeatDetails`).
    public var heartbeat: JSONText?

    public init(messageID: String, workflowID: String, stepKey: String, activity: String, queue: String, input: JSONText, options: ActivityOptions, status: StepStatus, sends: Int, scheduledAt: Date, sentAt: Date? = nil, lastHeardAt: Date? = nil, attempt: Int, result: JSONText? = nil, error: ActivityFailure? = nil, heartbeat: JSONText? = nil) {
        self.heartbeat = heartbeat
        self.messageID = messageID
        self.workflowID = workflowID
        self.stepKey = stepKey
        self.activity = activity
        self.queue = queue
        self.input = input
        self.options = options
        self.status = status
        self.sends = sends
        self.scheduledAt = scheduledAt
        self.sentAt = sentAt
        self.lastHeardAt = lastHeardAt
        self.attempt = attempt
        self.result = result
        self.error = error
    }
}

/// One line of a workflow's history.
public struct HistoryEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case workflowStarted = "workflow started"
        case activityScheduled = "activity scheduled"
        case activitySent = "activity sent"
        case activityResent = "activity re-sent"
        case activityProgress = "activity progress"
        case activityCompleted = "activity completed"
        case activityFailed = "activity failed"
        case activityTimedOut = "activity timed out"
        case activityPaused = "activity paused"
        case activityResumed = "activity resumed"
        case workflowParked = "workflow parked"
        case workflowUnparked = "workflow unparked"
        case timerStarted = "timer started"
        case timerFired = "timer fired"
        case cancelRequested = "cancel requested"
        case workflowPaused = "workflow paused"
        case workflowUnpaused = "workflow unpaused"
        case childStarted = "child started"
        case childCompleted = "child completed"
        case childFailed = "child failed"
        case signalReceived = "signal received"
        case updateAccepted = "update accepted"
        case updateCompleted = "update completed"
        case workflowCompleted = "workflow completed"
        case workflowFailed = "workflow failed"
        case workflowCancelled = "workflow cancelled"
        case workflowContinuedAsNew = "workflow continued as new"
        case workflowReset = "workflow reset"
        case workflowResumed = "workflow resumed"
    }

    public var at: Date
    public var kind: Kind
    public var stepKey: String?
    public var detail: String

    public init(at: Date, kind: Kind, stepKey: String? = nil, detail: String) {
        self.at = at
        self.kind = kind
        self.stepKey = stepKey
        self.detail = detail
    }
}

/// A queue and correlation id that receive a workflow's result when it ends.
public struct ResultRecipient: Sendable, Equatable, Hashable {
    public var replyTo: String
    public var correlationID: String

    public init(replyTo: String, correlationID: String) {
        self.replyTo = replyTo
        self.correlationID = correlationID
    }
}

/// A schedule that starts a workflow at fixed intervals or on a cron expression.
public struct ScheduleRecord: Sendable, Equatable {
    public var name: String
    public var workflow: String
    public var input: JSONText
    public var everySeconds: Int64?
    public var cron: String?
    public var nextRunAt: Date
    public var lastRunAt: Date?
    public var runs: Int
    /// What a due run does while the previous one still goes.
    public var overlap: OverlapPolicy
    /// A run found due later than this (the coordinator was down) is skipped; nil: it
    /// runs however late.
    public var catchupWindowSeconds: Int64?
    /// Each run starts up to this much after its time (``ScheduleStep/jitter(of:at:)``).
    public var jitterSeconds: Int64?
    /// A paused schedule starts nothing; `pauseNote` says why.
    public var paused: Bool
    public var pauseNote: String?
    /// The due times of runs waiting for the previous run to end (buffer policies).
    public var buffered: [Date]
    /// The workflow id of the last run it started.
    public var lastWorkflowID: String?
    /// How many due runs it did not start (overlap, catch-up window).
    public var skipped: Int

    public init(
        name: String, workflow: String, input: JSONText, everySeconds: Int64? = nil, cron: String? = nil, nextRunAt: Date, lastRunAt: Date? = nil, runs: Int,
        overlap: OverlapPolicy = .skip, catchupWindowSeconds: Int64? = nil, jitterSeconds: Int64? = nil, paused: Bool = false, pauseNote: String? = nil,
        buffered: [Date] = [], lastWorkflowID: String? = nil, skipped: Int = 0
    ) {
        self.name = name
        self.workflow = workflow
        self.input = input
        self.everySeconds = everySeconds
        self.cron = cron
        self.nextRunAt = nextRunAt
        self.lastRunAt = lastRunAt
        self.runs = runs
        self.overlap = overlap
        self.catchupWindowSeconds = catchupWindowSeconds
        self.jitterSeconds = jitterSeconds
        self.paused = paused
        self.pauseNote = pauseNote
        self.buffered = buffered
        self.lastWorkflowID = lastWorkflowID
        self.skipped = skipped
    }
}

/// Which workflows a list asks for. Empty fields do not filter.
public struct WorkflowFilter: Sendable, Equatable {
    public var statuses: Set<WorkflowStatus>
    public var name: String?
    public var startedAfter: Date?
    public var startedBefore: Date?
    /// Ids containing this text.
    public var idContains: String?
    /// Ids starting with this text (a schedule's runs are `<schedule>@<due time>`).
    public var idPrefix: String?
    /// Conditions on search attributes, all of which must hold.
    public var attributes: [WorkflowWhere.Clause]

    public init(
        statuses: Set<WorkflowStatus> = [], name: String? = nil, startedAfter: Date? = nil, startedBefore: Date? = nil, idContains: String? = nil, idPrefix: String? = nil,
        attributes: [WorkflowWhere.Clause] = []
    ) {
        self.statuses = statuses
        self.name = name
        self.startedAfter = startedAfter
        self.startedBefore = startedBefore
        self.idContains = idContains
        self.idPrefix = idPrefix
        self.attributes = attributes
    }

    /// Narrows this filter by `where`: its `status`, `name` and `started_at` clauses set
    /// those fields (each clause narrows further), the rest are search-attribute conditions.
    public func narrowed(by where: WorkflowWhere) throws -> WorkflowFilter {
        var filter = self
        for clause in `where`.clauses {
            switch (clause.key, clause.comparison, clause.value) {
            case ("status", .equal, .text(let text)), ("status", .notEqual, .text(let text)):
                guard let status = WorkflowStatus(rawValue: text) else {
                    throw ActivityFailure.nonRetryable(.invalidInput, "status '\(text)' is none of \(WorkflowStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let chosen: Set<WorkflowStatus> = clause.comparison == .equal ? [status] : Set(WorkflowStatus.allCases).subtracting([status])
                filter.statuses = filter.statuses.isEmpty ? chosen : filter.statuses.intersection(chosen)
                // (An empty set would mean "any status".)
                guard !filter.statuses.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "the status clauses of '\(`where`)' leave no status to match") }
            case ("name", .equal, .text(let name)):
                filter.name = name
            case ("started_at", let comparison, .text(let text)) where comparison != .equal && comparison != .notEqual:
                guard let time = ISO8601DateFormatter().date(from: text) else {
                    throw ActivityFailure.nonRetryable(.invalidInput, "started_at compares with an ISO 8601 time, like 2026-12-01T00:00:00Z; got '\(text)'")
                }
                switch comparison {
                case .less: filter.startedBefore = min(filter.startedBefore ?? time, time)
                case .lessOrEqual: filter.startedBefore = min(filter.startedBefore ?? time, time.addingTimeInterval(0.001))
                case .greater: filter.startedAfter = max(filter.startedAfter ?? time, time)
                default: filter.startedAfter = max(filter.startedAfter ?? time, time.addingTimeInterval(-0.001))
                }
            case (let key, _, _) where WorkflowWhere.builtInKeys.contains(key):
                throw ActivityFailure.nonRetryable(
                    .invalidInput, "'\(key) \(clause.comparison.rawValue) \(clause.value)' is not a filter: status takes = or !=, name takes =, started_at takes < <= > >= and a time"
                )
            default:
                filter.attributes.append(clause)
            }
        }
        return filter
    }
}

/// What a workflow filed about itself: its search attributes, and its memo (a JSON object
/// shown with it, not searched).
public struct WorkflowAttributes: Sendable, Equatable {
    public var search: [String: SearchAttribute]
    public var memo: JSONText?

    public init(search: [String: SearchAttribute] = [:], memo: JSONText? = nil) {
        self.search = search
        self.memo = memo
    }
}

/// Where a page of workflows ended: the last one's start and id, in the list's order
/// (newest first, ties by id). A page read after it never repeats or skips a workflow,
/// however many start meanwhile.
public struct WorkflowCursor: Sendable, Equatable, Codable {
    public var startedAt: Date
    public var id: String

    public init(startedAt: Date, id: String) {
        self.startedAt = startedAt
        self.id = id
    }
}

/// A history event with its place in the store's sequence.
public struct SequencedHistoryEvent: Sendable, Equatable {
    public var sequence: Int64
    public var event: HistoryEvent
    /// The kind as stored, which may be one a newer build wrote.
    public var kindName: String

    public init(sequence: Int64, event: HistoryEvent, kindName: String) {
        self.sequence = sequence
        self.event = event
        self.kindName = kindName
    }
}
