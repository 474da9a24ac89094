import Foundation
import GRDB

extension SQLiteWorkflowStore {
    /// The store's schema, one migration per version. A store written before migrations
    /// were recorded has the tables of `v1` already: its `IF NOT EXISTS` statements find
    /// them, and GRDB records the version, so such a store migrates in place.
    ///
    /// Never edit a migration that has shipped; add the next one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: workflows, steps, timers, history, schedules") { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS workflow (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    status TEXT NOT NULL,
                    input TEXT NOT NULL,
                    output TEXT,
                    error TEXT,
                    parked_reason TEXT,
                    cancel_requested INTEGER NOT NULL DEFAULT 0,
                    started_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    finished_at REAL
                );
                CREATE INDEX IF NOT EXISTS workflow_status ON workflow(status, started_at);
                CREATE TABLE IF NOT EXISTS result_recipient (
                    workflow_id TEXT NOT NULL,
                    reply_to TEXT NOT NULL,
                    correlation_id TEXT NOT NULL,
                    PRIMARY KEY (workflow_id, reply_to, correlation_id)
                );
                CREATE TABLE IF NOT EXISTS step (
                    message_id TEXT PRIMARY KEY,
                    workflow_id TEXT NOT NULL,
                    step_key TEXT NOT NULL,
                    activity TEXT NOT NULL,
                    queue TEXT NOT NULL,
                    input TEXT NOT NULL,
                    options TEXT NOT NULL,
                    status TEXT NOT NULL,
                    sends INTEGER NOT NULL,
                    scheduled_at REAL NOT NULL,
                    sent_at REAL,
                    last_heard_at REAL,
                    attempt INTEGER NOT NULL,
                    result TEXT,
                    error TEXT
                );
                CREATE INDEX IF NOT EXISTS step_workflow ON step(workflow_id);
                CREATE TABLE IF NOT EXISTS timer (
                    workflow_id TEXT NOT NULL,
                    timer_key TEXT NOT NULL,
                    fire_at REAL NOT NULL,
                    fired INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (workflow_id, timer_key)
                );
                CREATE TABLE IF NOT EXISTS history (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    workflow_id TEXT NOT NULL,
                    at REAL NOT NULL,
                    kind TEXT NOT NULL,
                    step_key TEXT,
                    detail TEXT NOT NULL
                );
                CREATE INDEX IF NOT EXISTS history_workflow ON history(workflow_id, id);
                CREATE TABLE IF NOT EXISTS schedule (
                    name TEXT PRIMARY KEY,
                    workflow TEXT NOT NULL,
                    input TEXT NOT NULL,
                    every_seconds INTEGER,
                    cron TEXT,
                    next_run_at REAL NOT NULL,
                    last_run_at REAL,
                    runs INTEGER NOT NULL DEFAULT 0
                );
                """)
        }
        migrator.registerMigration("v2: steps by workflow and status") { db in
            // Unparking counts a workflow's parked steps on every completion.
            try db.execute(sql: "DROP INDEX IF EXISTS step_workflow")
            try db.create(index: "step_workflow_status", on: "step", columns: ["workflow_id", "status"], ifNotExists: true)
        }
        migrator.registerMigration("v3: workflows in list order") { db in
            // `flow.workflow.list` reads a page newest first: with this index it reads the
            // page's rows and no others, however many workflows the store holds.
            try db.create(index: "workflow_started", on: "workflow", columns: ["started_at", "id"], ifNotExists: true)
        }
        migrator.registerMigration("v4: the trace a workflow belongs to") { db in
            // The W3C trace context of the workflow's span, so that its steps join the same
            // trace after a restart (docs/observability.md). Null for workflows from before.
            try db.alter(table: "workflow") { table in table.add(column: "trace_context", .text) }
        }
        migrator.registerMigration("v5: one journal per workflow") { db in
            // The ordered events every workflow's state follows from
            // (`SQLiteWorkflowStore+Journal.swift`); the journals of the workflows already
            // here are written from their rows.
            try createJournal(db)
        }
        migrator.registerMigration("v6: the journal decides; divergence and due timers") { db in
            // A workflow whose code did not replay is parked by a `replay_diverged` event
            // now, and its reason is kept apart from its steps' so that each can clear on
            // its own. One parked for that reason before has the event written for it.
            try db.execute(sql: """
                ALTER TABLE workflow ADD COLUMN divergence TEXT;
                CREATE INDEX timer_due ON timer(fired, fire_at);
                """)
            let diverged = try Row.fetchAll(
                db, sql: "SELECT id, parked_reason, updated_at FROM workflow WHERE status = 'parked' AND substr(parked_reason, 1, ?) = ?",
                arguments: [WorkflowNondeterminism.reasonPrefix.count, WorkflowNondeterminism.reasonPrefix]
            )
            for workflow in diverged {
                let reason: String = workflow[1]
                try db.execute(sql: "UPDATE workflow SET divergence = ? WHERE id = ?", arguments: [reason, workflow[0] as String])
                try record(db, workflowID: workflow[0], .replayDiverged(reason: reason), at: Date(timeIntervalSince1970: workflow[2]))
            }
        }
        migrator.registerMigration("v7: child workflows know their parent") { db in
            // A child's end is reported to the command of its parent that started it.
            try db.execute(sql: """
                ALTER TABLE workflow ADD COLUMN parent_id TEXT;
                ALTER TABLE workflow ADD COLUMN parent_position INTEGER;
                CREATE INDEX workflow_parent ON workflow(parent_id) WHERE parent_id IS NOT NULL;
                """)
        }
        migrator.registerMigration("v8: schedule policies") { db in
            // Overlap, catch-up window, jitter, pause and the runs waiting (SchedulePolicy.swift).
            try db.execute(sql: """
                ALTER TABLE schedule ADD COLUMN overlap TEXT NOT NULL DEFAULT 'skip';
                ALTER TABLE schedule ADD COLUMN catchup_window_seconds INTEGER;
                ALTER TABLE schedule ADD COLUMN jitter_seconds INTEGER;
                ALTER TABLE schedule ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE schedule ADD COLUMN pause_note TEXT;
                ALTER TABLE schedule ADD COLUMN buffered TEXT NOT NULL DEFAULT '[]';
                ALTER TABLE schedule ADD COLUMN last_workflow_id TEXT;
                ALTER TABLE schedule ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
                """)
        }
        migrator.registerMigration("v9: search attributes and memo") { db in
            // What workflows file about themselves (`search_attributes` and `memo` markers),
            // indexed by key and value for `flow workflow list --where`.
            try db.execute(sql: """
                CREATE TABLE workflow_attribute (
                    workflow_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    text_value TEXT,
                    number_value REAL,
                    PRIMARY KEY (workflow_id, key)
                );
                CREATE INDEX workflow_attribute_text ON workflow_attribute(key, text_value);
                CREATE INDEX workflow_attribute_number ON workflow_attribute(key, number_value);
                ALTER TABLE workflow ADD COLUMN memo TEXT;
                """)
        }
        migrator.registerMigration("v10: runs") { db in
            // Continue-as-new and reset start a workflow's next run under its id; each run
            // before is kept under `<id>@run-<n>` with `chain` naming the id they share
            // (`SQLiteWorkflowStore+Runs.swift`). A step keeps its last heartbeat details,
            // which an unpaused step's next attempt starts from.
            try db.execute(sql: """
                ALTER TABLE workflow ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE workflow ADD COLUMN chain TEXT;
                ALTER TABLE workflow ADD COLUMN run_request TEXT;
                ALTER TABLE step ADD COLUMN heartbeat TEXT;
                CREATE INDEX workflow_chain ON workflow(chain) WHERE chain IS NOT NULL;
                """)
        }
        return migrator
    }

    /// The names of the migrations this build knows, oldest first.
    public static var migrationNames: [String] { migrator.migrations }
}
