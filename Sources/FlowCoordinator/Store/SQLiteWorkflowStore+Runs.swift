import FlowCore
import Foundation
import GRDB

/// A workflow's runs in SQLite. The current run is the row under the workflow's id; a run
/// that a continue-as-new or a reset replaced is moved, with everything that hangs off it,
/// to the id `<id>@run-<n>`, and `chain` names the id every run shares.
///
/// Moving the old run rather than keying every table by run keeps each table's hot path
/// (a step, a timer, an event by workflow id) as it was: only this rare write knows runs.
extension SQLiteWorkflowStore {
    public func startNextRun(
        of workflowID: String, closing: WorkflowEvent?, journal: [JournalEntry], childrenFrom: Int, requestID: String?, expectedSequence: Int64, epoch: Int64, at now: Date
    ) async throws -> WorkflowRecord {
        let (name, input) = try WorkflowProjection.nextRunStart(of: workflowID, closing: closing, journal: journal)
        let closingPayload = try closing?.payloadText()
        let payloads = try journal.map { try $0.event.payloadText() }
        return try await write { db in
            guard let head = try Row.fetchOne(
                db, sql: "SELECT last_sequence, epoch, status, run, parent_id, parent_position, trace_context, memo FROM workflow WHERE id = ?", arguments: [workflowID]
            ) else { throw WorkflowStoreError(.noSuchWorkflow, "there is no workflow \(workflowID) to start a next run of") }
            let (last, owner, run): (Int64, Int64, Int) = (head[0], head[1], head[3])
            guard epoch >= owner else {
                throw WorkflowStoreError(.staleEpoch, "workflow \(workflowID) is owned under epoch \(owner), newer than this writer's \(epoch): another coordinator took it over")
            }
            guard last == expectedSequence else {
                throw WorkflowStoreError(.sequenceConflict, "workflow \(workflowID)'s journal ends at event \(last), not \(expectedSequence) as this writer read it: read it again")
            }
            let archived = WorkflowRecord.runID(of: workflowID, run: run)
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM workflow WHERE id = ?", arguments: [archived]) == true {
                throw WorkflowStoreError(.unavailable, "cannot keep run \(run) of \(workflowID) as \(archived): a workflow has that id")
            }
            // The run that ends: its last event, then everything of it moves to its own id.
            var closed = last
            if let closing, let closingPayload {
                closed += 1
                try db.execute(
                    sql: "INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                    arguments: [workflowID, closed, epoch, closing.kind, now.timeIntervalSince1970, closingPayload]
                )
                _ = try Self.project(db, closing, of: workflowID, status: WorkflowStatus(rawValue: head[2]) ?? .running, at: now)
            }
            try db.execute(sql: """
                UPDATE workflow SET id = :archived, chain = :id, parent_id = NULL, parent_position = NULL, last_sequence = :last, epoch = :epoch WHERE id = :id;
                UPDATE workflow_event SET workflow_id = :archived WHERE workflow_id = :id;
                UPDATE step SET workflow_id = :archived, message_id = :archived || '/' || step_key WHERE workflow_id = :id;
                UPDATE timer SET workflow_id = :archived WHERE workflow_id = :id;
                UPDATE history SET workflow_id = :archived WHERE workflow_id = :id;
                INSERT INTO workflow_attribute (workflow_id, key, text_value, number_value)
                    SELECT :archived, key, text_value, number_value FROM workflow_attribute WHERE workflow_id = :id;
                UPDATE workflow SET parent_id = :archived WHERE parent_id = :id AND parent_position >= :childrenFrom;
                """, arguments: ["archived": archived, "id": workflowID, "last": closed, "epoch": epoch, "childrenFrom": childrenFrom])
            // The next run, under the workflow's id.
            try db.execute(
                sql: """
                    INSERT INTO workflow (id, name, status, input, cancel_requested, started_at, updated_at, trace_context, epoch, last_sequence, parent_id, parent_position, memo, run, chain, run_request)
                    VALUES (?, ?, 'running', ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    workflowID, name, input.text, now.timeIntervalSince1970, now.timeIntervalSince1970, head[6] as String?, epoch, Int64(journal.count),
                    head[4] as String?, head[5] as Int?, head[7] as String?, run + 1, workflowID, requestID,
                ]
            )
            var status = WorkflowStatus.running
            for (entry, payload) in zip(journal, payloads) {
                try db.cachedStatement(sql: "INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?)")
                    .execute(arguments: [workflowID, entry.sequence, epoch, entry.event.kind, entry.event.position, entry.recordedAt.timeIntervalSince1970, payload])
                if case .workflowStarted = entry.event {
                    try Self.project(db, workflowID: workflowID, lines: [
                        WorkflowProjection.Line(kind: .workflowStarted, stepKey: nil, detail: "run \(run + 1), after run \(run) (\(archived)) \(WorkflowProjection.runEnd(closing, status: WorkflowStatus(rawValue: head[2]) ?? .running))"),
                    ], at: now)
                } else {
                    status = try Self.project(db, entry.event, of: workflowID, status: status, at: entry.recordedAt)
                }
            }
            guard let next = try WorkflowRow.fetchOne(db, key: workflowID) else { throw WorkflowStoreError(.unavailable, "the next run of \(workflowID) was not written") }
            return try next.record()
        }
    }

    public func runs(of workflowID: String) async throws -> [WorkflowSummary] {
        try await database.read { db in
            // Asked of a run that was replaced, the answer is the same: every run of its id.
            let chain = try String.fetchOne(db, sql: "SELECT coalesce(chain, id) FROM workflow WHERE id = ?", arguments: [workflowID]) ?? workflowID
            return try WorkflowSummaryRow.filter(Column("chain") == chain || Column("id") == chain).order(Column("run")).fetchAll(db).map(\.summary)
        }
    }
}
