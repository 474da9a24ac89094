import FlowCore
import Foundation
import GRDB

/// Each workflow's journal in SQLite: `workflow_event`, one row per event, numbered per
/// workflow. Every write of the store that changes a workflow appends its event in the
/// same transaction, so the journal and the tables beside it never disagree.
///
/// This is the path every step takes, so it binds values to cached statements: no
/// Codable record, no column-name conversion, no row read back
/// (`../shared/notes/workflow-throughput.md`).
extension SQLiteWorkflowStore {
    public func journal(workflowID: String, after: Int64, limit: Int) async throws -> [JournalEntry] {
        try await database.read { db in try Self.journal(db, workflowID: workflowID, after: after, limit: limit) }
    }

    static func journal(_ db: Database, workflowID: String, after: Int64 = 0, limit: Int = .max) throws -> [JournalEntry] {
        let rows = try Row.fetchCursor(
            db.cachedStatement(sql: "SELECT sequence, epoch, recorded_at, payload FROM workflow_event WHERE workflow_id = ? AND sequence > ? ORDER BY sequence LIMIT ?"),
            arguments: [workflowID, after, max(0, limit)]
        )
        var entries: [JournalEntry] = []
        while let row = try rows.next() {
            let payload: String = row[3]
            let event: WorkflowEvent
            do {
                event = try FlowJSON.decode(WorkflowEvent.self, from: payload)
            } catch {
                throw WorkflowStoreError(.unreadable, "event \(row[0] as Int64) of workflow \(workflowID)'s journal does not read: \(error). The store was written by another build, or edited by hand")
            }
            entries.append(JournalEntry(sequence: row[0], epoch: row[1], recordedAt: Date(timeIntervalSince1970: row[2]), event: event))
        }
        return entries
    }

    /// Appends `event` to the workflow's journal, in the caller's transaction. The
    /// workflow's row holds the journal's last sequence number and the epoch its writer
    /// owns it under; both travel with the event.
    static func record(_ db: Database, workflowID: String, _ event: WorkflowEvent, at: Date) throws {
        let head = try Row.fetchOne(
            db.cachedStatement(sql: "UPDATE workflow SET last_sequence = last_sequence + 1 WHERE id = ? RETURNING last_sequence, epoch"),
            arguments: [workflowID]
        )
        guard let head else { throw WorkflowStoreError(.noSuchWorkflow, "no workflow \(workflowID) to record \(event.kind) for") }
        try db.cachedStatement(sql: "INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [workflowID, head[0] as Int64, head[1] as Int64, event.kind, event.position, at.timeIntervalSince1970, try FlowJSON.encodeText(event)])
    }
}

// MARK: - The journal of a store written before it had one

extension SQLiteWorkflowStore {
    /// Creates the journal table and writes the journal of every workflow already in the
    /// store from its rows, so that an upgraded store's open workflows carry on and every
    /// tool reads the same journal for old and new workflows alike.
    ///
    /// Commands take their positions in the order the old history recorded them
    /// (`activity scheduled`, `timer started`), which is the order the workflow asked for
    /// them; each is followed by its outcome as its row now holds it. An old journal
    /// therefore shows where each step ended, not every park it went through on the way.
    static func createJournal(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE workflow_event (
                workflow_id TEXT NOT NULL,
                sequence INTEGER NOT NULL,
                epoch INTEGER NOT NULL,
                kind TEXT NOT NULL,
                position INTEGER,
                recorded_at REAL NOT NULL,
                payload TEXT NOT NULL,
                PRIMARY KEY (workflow_id, sequence)
            ) WITHOUT ROWID;
            ALTER TABLE workflow ADD COLUMN last_sequence INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE workflow ADD COLUMN next_position INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE workflow ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE step ADD COLUMN position INTEGER;
            ALTER TABLE timer ADD COLUMN position INTEGER;
            CREATE UNIQUE INDEX step_position ON step(workflow_id, position);
            """)
        let workflows = try Row.fetchAll(db, sql: "SELECT id, name, status, input, output, error, cancel_requested, started_at, finished_at FROM workflow ORDER BY started_at, id")
        for workflow in workflows {
            try backfill(db, workflow)
        }
    }

    private static func backfill(_ db: Database, _ workflow: Row) throws {
        let id: String = workflow["id"]
        let date = { (seconds: Double?) in seconds.map(Date.init(timeIntervalSince1970:)) }
        let startedAt = date(workflow["started_at"])!
        try record(db, workflowID: id, .workflowStarted(name: workflow["name"], input: try JSONText(storedText: workflow["input"])), at: startedAt)

        let steps = try Row.fetchAll(db, sql: "SELECT * FROM step WHERE workflow_id = ? ORDER BY scheduled_at, message_id", arguments: [id])
        let timers = try Row.fetchAll(db, sql: "SELECT * FROM timer WHERE workflow_id = ? ORDER BY fire_at, timer_key", arguments: [id])
        let history = try Row.fetchAll(db, sql: "SELECT kind, step_key, detail FROM history WHERE workflow_id = ? ORDER BY id", arguments: [id])
        // The order the workflow issued its commands in, as the old history saw it; any
        // row the history does not mention follows, in its own order.
        var order: [String] = []
        for line in history where ["activity scheduled", "timer started"].contains(line["kind"] as String) {
            if let key: String = line["step_key"], !order.contains(key) { order.append(key) }
        }
        for key in steps.map({ $0["step_key"] as String }) + timers.map({ $0["timer_key"] as String }) where !order.contains(key) {
            order.append(key)
        }
        let timedOut = Set(history.filter { ($0["kind"] as String) == "activity timed out" }.compactMap { $0["step_key"] as String? })

        for (position, key) in order.enumerated() {
            if let step = steps.first(where: { ($0["step_key"] as String) == key }) {
                try backfillStep(db, step, position: position, timedOut: timedOut.contains(key))
            } else if let timer = timers.first(where: { ($0["timer_key"] as String) == key }) {
                let fireAt = date(timer["fire_at"])!
                try db.execute(sql: "UPDATE timer SET position = ? WHERE workflow_id = ? AND timer_key = ?", arguments: [position, id, key])
                try record(db, workflowID: id, .timerStarted(position: position, key: key, fireAt: fireAt), at: fireAt)
                if timer["fired"] as Bool { try record(db, workflowID: id, .timerFired(position: position), at: fireAt) }
            }
        }
        try db.execute(sql: "UPDATE workflow SET next_position = ? WHERE id = ?", arguments: [order.count, id])

        let updatedAt = date(workflow["finished_at"]) ?? startedAt
        if workflow["cancel_requested"] as Bool {
            let reason = history.last { ($0["kind"] as String) == "cancel requested" }.map { $0["detail"] as String } ?? "requested before the store kept a journal"
            try record(db, workflowID: id, .cancelRequested(reason: reason), at: updatedAt)
        }
        let error = try (workflow["error"] as String?).map { try FlowJSON.decode(ActivityFailure.self, from: $0) }
        switch WorkflowStatus(rawValue: workflow["status"]) {
        case .completed?:
            let output = try (workflow["output"] as String?).map(JSONText.init(storedText:)) ?? .null
            try record(db, workflowID: id, .workflowCompleted(output: output), at: updatedAt)
        case .failed?:
            try record(db, workflowID: id, .workflowFailed(failure: error ?? .nonRetryable(.unknown, "no error was recorded")), at: updatedAt)
        case .cancelled?:
            try record(db, workflowID: id, .workflowCancelled(failure: error ?? .cancelled("cancelled")), at: updatedAt)
        case .running?, .parked?, .continuedAsNew?, .reset?, nil:
            break
        }
    }

    private static func backfillStep(_ db: Database, _ step: Row, position: Int, timedOut: Bool) throws {
        let id: String = step["workflow_id"]
        let scheduledAt = Date(timeIntervalSince1970: step["scheduled_at"])
        let heardAt = (step["last_heard_at"] as Double?).map(Date.init(timeIntervalSince1970:)) ?? scheduledAt
        try db.execute(sql: "UPDATE step SET position = ? WHERE message_id = ?", arguments: [position, step["message_id"] as String])
        let scheduled = WorkflowEvent.ScheduledActivity(
            position: position, activity: step["activity"], queue: step["queue"], input: try JSONText(storedText: step["input"]),
            options: try FlowJSON.decode(ActivityOptions.self, from: step["options"] as String), stepKey: step["step_key"]
        )
        try record(db, workflowID: id, .activityScheduled(scheduled), at: scheduledAt)
        let attempt: Int = step["attempt"]
        let failure = { () throws -> ActivityFailure in
            try (step["error"] as String?).map { try FlowJSON.decode(ActivityFailure.self, from: $0) } ?? .nonRetryable(.unknown, "no error was recorded")
        }
        switch StepStatus(rawValue: step["status"]) {
        case .completed?:
            let output = try (step["result"] as String?).map(JSONText.init(storedText:)) ?? .null
            try record(db, workflowID: id, .activityCompleted(position: position, attempt: attempt, output: output), at: heardAt)
        case .failed?:
            let event: WorkflowEvent = timedOut
                ? .activityTimedOut(position: position, failure: try failure())
                : .activityFailed(position: position, attempt: attempt, failure: try failure())
            try record(db, workflowID: id, event, at: heardAt)
        case .parked?:
            try record(db, workflowID: id, .activityParked(position: position, attempt: attempt, failure: try failure()), at: heardAt)
        case .scheduled?, .cancelled?, .paused?, nil:
            // (No store before the journal has cancelled steps.)
            break
        }
    }
}
