import FlowCoordinator
import FlowCore
import Foundation
import PostgresNIO

/// A workflow's runs, as `SQLiteWorkflowStore+Runs.swift` keeps them: the current run is
/// the row under the workflow's id; a run that a continue-as-new or a reset replaced moves,
/// with everything that hangs off it, to `<id>@run-<n>`, and `chain` names the id every run
/// shares. Only this rare write knows runs; every hot path reads by workflow id as before.
extension PostgresWorkflowStore {
    public func startNextRun(
        of workflowID: String, closing: WorkflowEvent?, journal: [JournalEntry], childrenFrom: Int, requestID: String?, expectedSequence: Int64, epoch: Int64, at now: Date
    ) async throws -> WorkflowRecord {
        let (name, input) = try WorkflowProjection.nextRunStart(of: workflowID, closing: closing, journal: journal)
        let closingPayload = try closing?.payloadText()
        let payloads = try journal.map { try $0.event.payloadText() }
        return try await transaction("start the next run of workflow \(workflowID)") { connection in
            let head = try await self.fence(connection, workflowID: workflowID, expectedSequence: expectedSequence, epoch: epoch)
            let archived = WorkflowRecord.runID(of: workflowID, run: head.run)
            let taken = try await connection.query("SELECT 1 AS taken FROM workflow WHERE id = \(archived)", logger: self.logger).first { _ in true } ?? false
            if taken { throw WorkflowStoreError(.unavailable, "cannot keep run \(head.run) of \(workflowID) as \(archived): a workflow has that id") }

            // The run that ends: its last event, then everything of it moves to its own id.
            var closed = expectedSequence
            if let closing, let closingPayload {
                closed += 1
                try await connection.query(
                    """
                    INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload)
                    VALUES (\(workflowID), \(closed), \(epoch), \(closing.kind), NULL, \(now), \(closingPayload))
                    """, logger: self.logger)
                _ = try await self.project(connection, closing, of: workflowID, status: head.status, at: now)
            }
            let moves: [PostgresQuery] = [
                """
                UPDATE workflow SET id = \(archived), chain = \(workflowID), parent_id = NULL, parent_position = NULL, last_sequence = \(closed), epoch = \(epoch)
                WHERE id = \(workflowID)
                """,
                "UPDATE workflow_event SET workflow_id = \(archived) WHERE workflow_id = \(workflowID)",
                "UPDATE step SET workflow_id = \(archived), message_id = \(archived) || '/' || step_key WHERE workflow_id = \(workflowID)",
                "UPDATE timer SET workflow_id = \(archived) WHERE workflow_id = \(workflowID)",
                "UPDATE history SET workflow_id = \(archived) WHERE workflow_id = \(workflowID)",
                """
                INSERT INTO workflow_attribute (workflow_id, key, text_value, number_value)
                SELECT \(archived), key, text_value, number_value FROM workflow_attribute WHERE workflow_id = \(workflowID)
                """,
                "UPDATE workflow SET parent_id = \(archived) WHERE parent_id = \(workflowID) AND parent_position >= \(childrenFrom)",
            ]
            for move in moves { try await connection.query(move, logger: self.logger) }

            // The next run, under the workflow's id.
            try await connection.query(
                """
                INSERT INTO workflow (id, name, status, input, started_at, updated_at, trace_context, epoch, last_sequence, parent_id, parent_position, memo, run, chain, run_request,
                    partition)
                VALUES (\(workflowID), \(name), 'running', \(input.text), \(now), \(now), \(head.traceContext), \(epoch), \(Int64(journal.count)),
                    \(head.parentID), \(head.parentPosition), \(head.memo), \(head.run + 1), \(workflowID), \(requestID), \(head.partition))
                """, logger: self.logger)
            var status = WorkflowStatus.running
            for (entry, payload) in zip(journal, payloads) {
                try await connection.query(
                    """
                    INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload)
                    VALUES (\(workflowID), \(entry.sequence), \(epoch), \(entry.event.kind), \(entry.event.position), \(entry.recordedAt), \(payload))
                    """, logger: self.logger)
                if case .workflowStarted = entry.event {
                    let end = WorkflowProjection.runEnd(closing, status: head.status)
                    try await self.project(connection, workflowID: workflowID, lines: [
                        WorkflowProjection.Line(kind: .workflowStarted, stepKey: nil, detail: "run \(head.run + 1), after run \(head.run) (\(archived)) \(end)"),
                    ], at: now)
                } else {
                    status = try await self.project(connection, entry.event, of: workflowID, status: status, at: entry.recordedAt)
                }
            }
            guard let next = try await connection.query(
                "SELECT \(unescaped: Self.workflowColumns) FROM workflow WHERE id = \(workflowID)", logger: self.logger
            ).first({ try $0.workflow }) else { throw WorkflowStoreError(.unavailable, "the next run of \(workflowID) was not written") }
            return next
        }
    }

    public func runs(of workflowID: String) async throws -> [WorkflowSummary] {
        try await read("read the runs of workflow \(workflowID)") { connection in
            // Asked of a run that was replaced, the answer is the same: every run of its id.
            let chain = try await connection.query("SELECT coalesce(chain, id) AS chain FROM workflow WHERE id = \(workflowID)", logger: self.logger)
                .first { try $0("chain", as: String.self) } ?? workflowID
            return try await connection.query(
                "SELECT \(unescaped: Self.summaryColumns) FROM workflow WHERE chain = \(chain) OR id = \(chain) ORDER BY run", logger: self.logger
            ).all { try $0.summary }
        }
    }

    // MARK: Schedules

    public func upsertSchedule(_ schedule: ScheduleRecord) async throws {
        let buffered = Self.bufferText(schedule.buffered)
        try await transaction("write schedule \(schedule.name)") { connection in
            // A schedule replaced keeps its run state: its runs, last run, buffer and skips.
            try await connection.query(
                """
                INSERT INTO schedule (name, workflow, input, every_seconds, cron, next_run_at, last_run_at, runs, overlap, catchup_window_seconds, jitter_seconds,
                    paused, pause_note, buffered, last_workflow_id, skipped)
                VALUES (\(schedule.name), \(schedule.workflow), \(schedule.input.text), \(schedule.everySeconds), \(schedule.cron), \(schedule.nextRunAt),
                    \(schedule.lastRunAt), \(schedule.runs), \(schedule.overlap.rawValue), \(schedule.catchupWindowSeconds), \(schedule.jitterSeconds),
                    \(schedule.paused), \(schedule.pauseNote), \(buffered), \(schedule.lastWorkflowID), \(schedule.skipped))
                ON CONFLICT (name) DO UPDATE SET workflow = excluded.workflow, input = excluded.input, every_seconds = excluded.every_seconds,
                    cron = excluded.cron, next_run_at = excluded.next_run_at, overlap = excluded.overlap,
                    catchup_window_seconds = excluded.catchup_window_seconds, jitter_seconds = excluded.jitter_seconds,
                    paused = excluded.paused, pause_note = excluded.pause_note
                """, logger: self.logger)
        }
    }

    public func removeSchedule(name: String) async throws -> Bool {
        try await transaction("remove schedule \(name)") { connection in
            try await connection.query("DELETE FROM schedule WHERE name = \(name) RETURNING name", logger: self.logger).first { _ in true } ?? false
        }
    }

    public func schedules() async throws -> [ScheduleRecord] {
        try await read("read the schedules") { connection in
            try await connection.query("SELECT \(unescaped: Self.scheduleColumns) FROM schedule ORDER BY name", logger: self.logger).all { try $0.schedule }
        }
    }

    public func recordScheduleState(_ schedule: ScheduleRecord) async throws {
        let buffered = Self.bufferText(schedule.buffered)
        try await transaction("record the state of schedule \(schedule.name)") { connection in
            try await connection.query(
                """
                UPDATE schedule SET next_run_at = \(schedule.nextRunAt), last_run_at = \(schedule.lastRunAt), runs = \(schedule.runs),
                    last_workflow_id = \(schedule.lastWorkflowID), buffered = \(buffered), skipped = \(schedule.skipped)
                WHERE name = \(schedule.name)
                """, logger: self.logger)
        }
    }

    public func setSchedulePaused(name: String, paused: Bool, note: String?) async throws -> ScheduleRecord? {
        try await transaction("pause or resume schedule \(name)") { connection in
            try await connection.query(
                "UPDATE schedule SET paused = \(paused), pause_note = \(paused ? note : nil) WHERE name = \(name) RETURNING \(unescaped: Self.scheduleColumns)",
                logger: self.logger
            ).first { try $0.schedule }
        }
    }

    /// The due times of a schedule's waiting runs, as the SQLite store keeps them: a JSON
    /// array of seconds since 1970.
    private static func bufferText(_ buffered: [Date]) -> String {
        "[" + buffered.map { "\($0.timeIntervalSince1970)" }.joined(separator: ",") + "]"
    }
}
