import FlowCoordinator
import FlowCore
import Foundation
import PostgresNIO

/// The columns each query reads, and how a row becomes a domain record. JSON columns hold
/// the canonical text the coordinator wrote; times are `timestamptz`.
extension PostgresWorkflowStore {
    static let workflowColumns = """
        id, name, status, input, output, error, parked_reason, cancel_requested, started_at, updated_at, finished_at, trace_context,
        parent_id, parent_position, run, chain, run_request
        """
    static let summaryColumns = "id, name, status, parked_reason, cancel_requested, started_at, updated_at, finished_at, chain"
    static let stepColumns = """
        message_id, workflow_id, step_key, activity, queue, input, options, status, sends, scheduled_at, sent_at, last_heard_at, attempt, result, error, heartbeat
        """
    static let scheduleColumns = """
        name, workflow, input, every_seconds, cron, next_run_at, last_run_at, runs, overlap, catchup_window_seconds, jitter_seconds, paused, pause_note,
        buffered, last_workflow_id, skipped
        """
}

/// One row, read by column name.
struct StoredRow {
    private let row: PostgresRandomAccessRow

    init(_ row: PostgresRow) {
        self.row = row.makeRandomAccess()
    }

    func callAsFunction<Value: PostgresDecodable>(_ column: String, as type: Value.Type = Value.self) throws -> Value {
        try row[column].decode(Value.self)
    }

    func integer(_ column: String) throws -> Int { Int(try self(column, as: Int32.self)) }

    func optionalInteger(_ column: String) throws -> Int? { try self(column, as: Int32?.self).map(Int.init) }

    func json(_ column: String) throws -> JSONText {
        try JSONText(storedText: self(column, as: String.self))
    }

    func optionalJSON(_ column: String) throws -> JSONText? {
        try self(column, as: String?.self).map(JSONText.init(storedText:))
    }

    func failure(_ column: String) throws -> ActivityFailure? {
        try self(column, as: String?.self).map { try FlowJSON.decode(ActivityFailure.self, from: $0) }
    }

    func raw<Value: RawRepresentable>(_ column: String, as type: Value.Type) throws -> Value where Value.RawValue == String {
        let text = try self(column, as: String.self)
        guard let value = Value(rawValue: text) else {
            throw WorkflowStoreError(.unreadable, "column \(column) holds '\(text)', which this build does not know as a \(Value.self): was the store written by a newer build?")
        }
        return value
    }

    var workflow: WorkflowRecord {
        get throws {
            let parentID: String? = try self("parent_id")
            return WorkflowRecord(
                id: try self("id"), name: try self("name"), status: try raw("status", as: WorkflowStatus.self), input: try json("input"),
                output: try optionalJSON("output"), error: try failure("error"), parkedReason: try self("parked_reason"),
                cancelRequested: try self("cancel_requested"), startedAt: try self("started_at"), updatedAt: try self("updated_at"),
                finishedAt: try self("finished_at"),
                traceContext: try self("trace_context", as: String?.self).map { try FlowJSON.decode([String: String].self, from: $0) } ?? [:],
                parent: try parentID.map { ParentLink(workflowID: $0, position: try optionalInteger("parent_position") ?? 0) },
                run: try integer("run"), chainID: try self("chain"), runRequestID: try self("run_request")
            )
        }
    }

    var summary: WorkflowSummary {
        get throws {
            let id: String = try self("id")
            let chain: String? = try self("chain")
            return WorkflowSummary(
                id: id, name: try self("name"), status: try raw("status", as: WorkflowStatus.self), parkedReason: try self("parked_reason"),
                cancelRequested: try self("cancel_requested"), startedAt: try self("started_at"), updatedAt: try self("updated_at"),
                finishedAt: try self("finished_at"), runOf: chain == id ? nil : chain
            )
        }
    }

    var step: StepRecord {
        get throws {
            StepRecord(
                messageID: try self("message_id"), workflowID: try self("workflow_id"), stepKey: try self("step_key"), activity: try self("activity"),
                queue: try self("queue"), input: try json("input"), options: try FlowJSON.decode(ActivityOptions.self, from: try self("options", as: String.self)),
                status: try raw("status", as: StepStatus.self), sends: try integer("sends"), scheduledAt: try self("scheduled_at"),
                sentAt: try self("sent_at"), lastHeardAt: try self("last_heard_at"), attempt: try integer("attempt"),
                result: try optionalJSON("result"), error: try failure("error"), heartbeat: try optionalJSON("heartbeat")
            )
        }
    }

    var schedule: ScheduleRecord {
        get throws {
            ScheduleRecord(
                name: try self("name"), workflow: try self("workflow"), input: try json("input"), everySeconds: try self("every_seconds"),
                cron: try self("cron"), nextRunAt: try self("next_run_at"), lastRunAt: try self("last_run_at"), runs: try integer("runs"),
                overlap: OverlapPolicy(rawValue: try self("overlap")) ?? .skip, catchupWindowSeconds: try self("catchup_window_seconds"),
                jitterSeconds: try self("jitter_seconds"), paused: try self("paused"), pauseNote: try self("pause_note"),
                buffered: try FlowJSON.decode([Double].self, from: try self("buffered", as: String.self)).map(Date.init(timeIntervalSince1970:)),
                lastWorkflowID: try self("last_workflow_id"), skipped: try integer("skipped")
            )
        }
    }

    var historyEvent: SequencedHistoryEvent {
        get throws {
            let kind: String = try self("kind")
            let event = HistoryEvent(
                at: try self("at"), kind: HistoryEvent.Kind(rawValue: kind) ?? .activityProgress, stepKey: try self("step_key"), detail: try self("detail")
            )
            return SequencedHistoryEvent(sequence: try self("id"), event: event, kindName: kind)
        }
    }
}

extension PostgresRowSequence {
    /// Every row, turned into a record by `transform`.
    func all<Record>(_ transform: (StoredRow) throws -> Record) async throws -> [Record] {
        var records: [Record] = []
        for try await row in self { records.append(try transform(StoredRow(row))) }
        return records
    }

    /// The first row, if any, turned into a record; the rest are read and dropped.
    func first<Record>(_ transform: (StoredRow) throws -> Record) async throws -> Record? {
        try await all(transform).first
    }
}
