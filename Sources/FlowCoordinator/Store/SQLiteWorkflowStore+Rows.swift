import FlowCore
import FlowRuntime
import Foundation
import GRDB

/// The store's tables as GRDB records, one per table. JSON columns (inputs, outputs,
/// options, errors) hold text; the rows turn it into the domain records and back.
extension SQLiteWorkflowStore {
    struct WorkflowRow: SnakeCaseColumns {
        static let databaseTableName = "workflow"
        var id: String
        var name: String
        var status: WorkflowStatus
        var input: String
        var output: String?
        var error: String?
        var parkedReason: String?
        var cancelRequested: Bool
        var startedAt: Date
        var updatedAt: Date
        var finishedAt: Date?
        /// JSON: the trace context's headers (`traceparent`, `tracestate`).
        var traceContext: String?
        var parentID: String?
        var parentPosition: Int?
        var run: Int
        /// The workflow id all runs share; null for a workflow's first run written before v10.
        var chain: String?
        var runRequest: String?

        func record() throws -> WorkflowRecord {
            WorkflowRecord(
                id: id, name: name, status: status, input: try JSONText(storedText: input), output: try output.map(JSONText.init(storedText:)),
                error: try error.map { try FlowJSON.decode(ActivityFailure.self, from: $0) }, parkedReason: parkedReason,
                cancelRequested: cancelRequested, startedAt: startedAt, updatedAt: updatedAt, finishedAt: finishedAt,
                traceContext: try traceContext.map { try FlowJSON.decode([String: String].self, from: $0) } ?? [:],
                parent: parentID.map { ParentLink(workflowID: $0, position: parentPosition ?? 0) }, run: run, chainID: chain, runRequestID: runRequest
            )
        }
    }

    struct StepRow: SnakeCaseColumns {
        static let databaseTableName = "step"
        var messageID: String
        var workflowID: String
        var stepKey: String
        var activity: String
        var queue: String
        var input: String
        var options: String
        var status: StepStatus
        var sends: Int
        var scheduledAt: Date
        var sentAt: Date?
        var lastHeardAt: Date?
        var attempt: Int
        var result: String?
        var error: String?
        /// The step's command position in its workflow's journal.
        var position: Int?
        var heartbeat: String?

        func record() throws -> StepRecord {
            StepRecord(
                messageID: messageID, workflowID: workflowID, stepKey: stepKey, activity: activity, queue: queue,
                input: try JSONText(storedText: input), options: try FlowJSON.decode(ActivityOptions.self, from: options), status: status, sends: sends,
                scheduledAt: scheduledAt, sentAt: sentAt, lastHeardAt: lastHeardAt, attempt: attempt,
                result: try result.map(JSONText.init(storedText:)), error: try error.map { try FlowJSON.decode(ActivityFailure.self, from: $0) },
                heartbeat: try heartbeat.map(JSONText.init(storedText:))
            )
        }
    }

    struct TimerRow: SnakeCaseColumns {
        static let databaseTableName = "timer"
        var workflowID: String
        var timerKey: String
        var fireAt: Date
        var fired: Bool
        /// The timer's command position in its workflow's journal.
        var position: Int?
    }

    struct HistoryRow: SnakeCaseColumns {
        static let databaseTableName = "history"
        var id: Int64?
        var workflowID: String
        var at: Date
        /// A ``HistoryEvent/Kind`` raw value; kept as text so a kind a newer build wrote still reads.
        var kind: String
        var stepKey: String?
        var detail: String

        var event: HistoryEvent {
            HistoryEvent(at: at, kind: HistoryEvent.Kind(rawValue: kind) ?? .activityProgress, stepKey: stepKey, detail: detail)
        }
    }

    struct ScheduleRow: SnakeCaseColumns {
        static let databaseTableName = "schedule"
        var name: String
        var workflow: String
        var input: String
        var everySeconds: Int64?
        var cron: String?
        var nextRunAt: Date
        var lastRunAt: Date?
        var runs: Int
        var overlap: String
        var catchupWindowSeconds: Int64?
        var jitterSeconds: Int64?
        var paused: Bool
        var pauseNote: String?
        /// JSON: the due times (seconds since 1970) of the runs waiting.
        var buffered: String
        var lastWorkflowID: String?
        var skipped: Int

        init(_ schedule: ScheduleRecord) {
            name = schedule.name
            workflow = schedule.workflow
            input = schedule.input.text
            everySeconds = schedule.everySeconds
            cron = schedule.cron
            nextRunAt = schedule.nextRunAt
            lastRunAt = schedule.lastRunAt
            runs = schedule.runs
            overlap = schedule.overlap.rawValue
            catchupWindowSeconds = schedule.catchupWindowSeconds
            jitterSeconds = schedule.jitterSeconds
            paused = schedule.paused
            pauseNote = schedule.pauseNote
            buffered = "[" + schedule.buffered.map { "\($0.timeIntervalSince1970)" }.joined(separator: ",") + "]"
            lastWorkflowID = schedule.lastWorkflowID
            skipped = schedule.skipped
        }

        func record() throws -> ScheduleRecord {
            ScheduleRecord(
                name: name, workflow: workflow, input: try JSONText(storedText: input), everySeconds: everySeconds, cron: cron,
                nextRunAt: nextRunAt, lastRunAt: lastRunAt, runs: runs, overlap: OverlapPolicy(rawValue: overlap) ?? .skip,
                catchupWindowSeconds: catchupWindowSeconds, jitterSeconds: jitterSeconds, paused: paused, pauseNote: pauseNote,
                buffered: try FlowJSON.decode([Double].self, from: buffered).map(Date.init(timeIntervalSince1970:)), lastWorkflowID: lastWorkflowID, skipped: skipped
            )
        }
    }
}
