import FlowCore
import FlowRuntime
import Foundation
import GRDB

/// The coordinator's store in one SQLite file in its data folder: the default, with
/// nothing to set up. Write-ahead logging with `synchronous = NORMAL` keeps a commit
/// through the crash of the process, which is what this store is for.
public final class SQLiteWorkflowStore: WorkflowStore {
    private let database: DatabaseQueue

    /// Opens (or creates) the store at `path`. `readOnly` is for commands that only look
    /// (`flow workflow list|show`) while a coordinator runs.
    public init(path: String, readOnly: Bool = false) throws {
        do {
            database = try LocalDatabase.open(path: path, readOnly: readOnly)
        } catch {
            throw WorkflowStoreError("cannot open the workflow store at \(path): \(error). Check that the coordinator's data folder exists and is writable")
        }
        if !readOnly { try migrate() }
    }

    private func migrate() throws {
        try database.write { db in
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
    }

    // MARK: Workflows

    /// Records a new workflow, or returns the one that has this id; either way `recipient`
    /// will receive its result.
    public func startWorkflow(id: String, name: String, input: JSONText, recipient: ResultRecipient?, at now: Date) async throws -> WorkflowStartOutcome {
        try await database.write { db in
            if let recipient {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO result_recipient (workflow_id, reply_to, correlation_id) VALUES (?, ?, ?)",
                    arguments: [id, recipient.replyTo, recipient.correlationID]
                )
            }
            if let existing = try Self.fetchWorkflow(db, id: id) { return .existing(existing) }
            try db.execute(
                sql: "INSERT INTO workflow (id, name, status, input, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [id, name, WorkflowStatus.running.rawValue, input.text, now.timeIntervalSince1970, now.timeIntervalSince1970]
            )
            try Self.append(db, workflowID: id, kind: .workflowStarted, stepKey: nil, detail: "\(name) with input \(input.text.prefix(500))", at: now)
            return .created(try Self.fetchWorkflow(db, id: id)!)
        }
    }

    public func workflow(id: String) async throws -> WorkflowRecord? {
        try await database.read { db in try Self.fetchWorkflow(db, id: id) }
    }

    /// Workflows, newest first, optionally of some statuses only.
    public func workflows(status: Set<WorkflowStatus> = [], limit: Int = 100) async throws -> [WorkflowRecord] {
        try await database.read { db in
            var sql = "SELECT * FROM workflow"
            var arguments: StatementArguments = []
            if !status.isEmpty {
                sql += " WHERE status IN (\(status.map { _ in "?" }.joined(separator: ",")))"
                for value in status.sorted(by: { $0.rawValue < $1.rawValue }) { _ = arguments.append(contentsOf: [value.rawValue]) }
            }
            sql += " ORDER BY started_at DESC, id LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.workflowRecord)
        }
    }

    /// Workflows that must run again after a start: running or parked.
    public func unfinishedWorkflows() async throws -> [WorkflowRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM workflow WHERE status IN ('running', 'parked') ORDER BY started_at")
                .map(Self.workflowRecord)
        }
    }

    /// Records the end of a workflow and returns who must be told. A workflow already
    /// finished keeps its first end.
    public func finishWorkflow(id: String, status: WorkflowStatus, output: JSONText?, error: ActivityFailure?, at now: Date) async throws -> (WorkflowRecord, [ResultRecipient])? {
        try await database.write { db in
            guard let current = try Self.fetchWorkflow(db, id: id), !current.status.isFinished else { return nil }
            try db.execute(
                sql: "UPDATE workflow SET status = ?, output = ?, error = ?, parked_reason = NULL, updated_at = ?, finished_at = ? WHERE id = ?",
                arguments: [status.rawValue, output?.text, try error.map(Self.encode), now.timeIntervalSince1970, now.timeIntervalSince1970, id]
            )
            let kind: HistoryEvent.Kind = status == .completed ? .workflowCompleted : status == .cancelled ? .workflowCancelled : .workflowFailed
            let detail = output.map { "output \($0.text.prefix(500))" } ?? error.map { "\($0)" } ?? ""
            try Self.append(db, workflowID: id, kind: kind, stepKey: nil, detail: detail, at: now)
            return (try Self.fetchWorkflow(db, id: id)!, try Self.fetchRecipients(db, workflowID: id))
        }
    }

    /// Who still has to receive the result of workflow `id`.
    public func recipients(workflowID: String) async throws -> [ResultRecipient] {
        try await database.read { db in try Self.fetchRecipients(db, workflowID: workflowID) }
    }

    /// Finished workflows whose result was not yet sent to everyone (a crash came between).
    public func finishedWithRecipients() async throws -> [WorkflowRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM workflow WHERE status IN ('completed', 'failed', 'cancelled')
                AND id IN (SELECT workflow_id FROM result_recipient)
                """).map(Self.workflowRecord)
        }
    }

    public func removeRecipient(workflowID: String, _ recipient: ResultRecipient) async throws {
        try await database.write { db in
            try db.execute(
                sql: "DELETE FROM result_recipient WHERE workflow_id = ? AND reply_to = ? AND correlation_id = ?",
                arguments: [workflowID, recipient.replyTo, recipient.correlationID]
            )
        }
    }

    /// Marks a workflow for cancellation. Returns the workflow, or nil when there is none.
    public func requestCancel(id: String, reason: String, at now: Date) async throws -> WorkflowRecord? {
        try await database.write { db in
            guard let current = try Self.fetchWorkflow(db, id: id) else { return nil }
            if !current.status.isFinished, !current.cancelRequested {
                try db.execute(sql: "UPDATE workflow SET cancel_requested = 1, updated_at = ? WHERE id = ?", arguments: [now.timeIntervalSince1970, id])
                try Self.append(db, workflowID: id, kind: .cancelRequested, stepKey: nil, detail: reason, at: now)
            }
            return try Self.fetchWorkflow(db, id: id)
        }
    }

    public func appendHistory(workflowID: String, kind: HistoryEvent.Kind, stepKey: String?, detail: String, at now: Date) async throws {
        try await database.write { db in
            try Self.append(db, workflowID: workflowID, kind: kind, stepKey: stepKey, detail: detail, at: now)
        }
    }

    public func history(workflowID: String) async throws -> [HistoryEvent] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM history WHERE workflow_id = ? ORDER BY id", arguments: [workflowID]).map { row in
                HistoryEvent(
                    at: Date(timeIntervalSince1970: row["at"]), kind: HistoryEvent.Kind(rawValue: row["kind"]) ?? .activityProgress,
                    stepKey: row["step_key"], detail: row["detail"]
                )
            }
        }
    }

    // MARK: Steps

    public func step(messageID: String) async throws -> StepRecord? {
        try await database.read { db in try Self.fetchStep(db, messageID: messageID) }
    }

    public func steps(workflowID: String) async throws -> [StepRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM step WHERE workflow_id = ? ORDER BY scheduled_at, message_id", arguments: [workflowID])
                .map(Self.stepRecord)
        }
    }

    /// Records a new step before its request is sent; returns the step already recorded
    /// under the same message id, if any.
    public func scheduleStep(_ step: StepRecord) async throws -> StepRecord {
        try await database.write { db in
            if let existing = try Self.fetchStep(db, messageID: step.messageID) { return existing }
            try db.execute(
                sql: """
                    INSERT INTO step (message_id, workflow_id, step_key, activity, queue, input, options, status, sends, scheduled_at, attempt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0)
                    """,
                arguments: [
                    step.messageID, step.workflowID, step.stepKey, step.activity, step.queue, step.input.text,
                    try Self.encode(step.options), StepStatus.scheduled.rawValue, step.scheduledAt.timeIntervalSince1970,
                ]
            )
            try Self.append(db, workflowID: step.workflowID, kind: .activityScheduled, stepKey: step.stepKey, detail: "\(step.activity) on \(step.queue)", at: step.scheduledAt)
            var recorded = step
            recorded.status = .scheduled
            recorded.sends = 0
            return recorded
        }
    }

    /// Records that the request of a step was sent (and confirmed by the broker).
    public func markSent(messageID: String, at now: Date, resentBecause reason: String?) async throws -> StepHead? {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE step SET sends = sends + 1, sent_at = ?, last_heard_at = NULL WHERE message_id = ?",
                arguments: [now.timeIntervalSince1970, messageID]
            )
            guard let step = try Self.fetchStepHead(db, messageID: messageID) else { return nil }
            if let reason {
                try Self.append(db, workflowID: step.workflowID, kind: .activityResent, stepKey: step.stepKey, detail: reason, at: now)
            }
            return step
        }
    }

    public func recordProgress(messageID: String, attempt: Int, details: JSONText?, at now: Date) async throws {
        try await database.write { db in
            guard let step = try Self.fetchStepHead(db, messageID: messageID), !step.status.isFinal else { return }
            try db.execute(
                sql: "UPDATE step SET last_heard_at = ?, attempt = ? WHERE message_id = ?",
                arguments: [now.timeIntervalSince1970, attempt, messageID]
            )
            try Self.append(db, workflowID: step.workflowID, kind: .activityProgress, stepKey: step.stepKey, detail: "attempt \(attempt): \(details?.text.prefix(300) ?? "")", at: now)
        }
    }

    /// Records a step's successful end. A parked step takes it too: that is how a replay
    /// from the dead-letter queue resumes its workflow.
    public func completeStep(messageID: String, attempt: Int, output: JSONText, at now: Date) async throws -> StepChange {
        try await database.write { db in
            guard var step = try Self.fetchStepHead(db, messageID: messageID), try Self.isRunning(db, workflowID: step.workflowID)
            else { return .unknown }
            if step.status.isFinal { return .alreadyFinal(step) }
            let previous = step.status
            step.status = .completed
            try db.execute(
                sql: "UPDATE step SET status = 'completed', result = ?, attempt = ?, last_heard_at = ? WHERE message_id = ?",
                arguments: [output.text, attempt, now.timeIntervalSince1970, messageID]
            )
            try Self.append(db, workflowID: step.workflowID, kind: .activityCompleted, stepKey: step.stepKey, detail: "attempt \(attempt): \(output.text.prefix(300))", at: now)
            let unparked = try Self.unparkIfClear(db, workflowID: step.workflowID, at: now, after: previous == .parked ? "\(step.activity) completed after its replay" : nil)
            return .recorded(step, unparked: unparked)
        }
    }

    /// Records a step's failure: `parked` keeps it waiting for a replay and parks its
    /// workflow; `failed` ends it.
    public func failStep(messageID: String, attempt: Int, failure: ActivityFailure, status: StepStatus, timedOut: Bool, at now: Date) async throws -> StepChange {
        try await database.write { db in
            guard var step = try Self.fetchStepHead(db, messageID: messageID), try Self.isRunning(db, workflowID: step.workflowID)
            else { return .unknown }
            if step.status.isFinal || (step.status == .parked && status == .parked) { return .alreadyFinal(step) }
            step.status = status
            try db.execute(
                sql: "UPDATE step SET status = ?, error = ?, attempt = ?, last_heard_at = ? WHERE message_id = ?",
                arguments: [status.rawValue, try Self.encode(failure), attempt, now.timeIntervalSince1970, messageID]
            )
            try Self.append(db, workflowID: step.workflowID, kind: timedOut ? .activityTimedOut : .activityFailed, stepKey: step.stepKey, detail: "attempt \(attempt): \(failure)", at: now)
            if status == .parked {
                let reason = "waiting for dead-letter replay: \(step.activity) (message \(messageID)) failed: \(failure.description.prefix(300))"
                try db.execute(
                    sql: "UPDATE workflow SET status = 'parked', parked_reason = ?, updated_at = ? WHERE id = ?",
                    arguments: [reason, now.timeIntervalSince1970, step.workflowID]
                )
                try Self.append(db, workflowID: step.workflowID, kind: .workflowParked, stepKey: step.stepKey, detail: reason, at: now)
            }
            return .recorded(step, unparked: false)
        }
    }

    /// Sets a parked workflow running again once none of its steps is parked.
    private static func unparkIfClear(_ db: Database, workflowID: String, at now: Date, after reason: String?) throws -> Bool {
        guard let reason,
              try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM step WHERE workflow_id = ? AND status = 'parked'", arguments: [workflowID]) == 0
        else { return false }
        try db.execute(
            sql: "UPDATE workflow SET status = 'running', parked_reason = NULL, updated_at = ? WHERE id = ? AND status = 'parked'",
            arguments: [now.timeIntervalSince1970, workflowID]
        )
        try append(db, workflowID: workflowID, kind: .workflowUnparked, stepKey: nil, detail: reason, at: now)
        return true
    }

    // MARK: Timers

    /// The time a durable timer fires: recorded on first use, read back on replay.
    public func timer(workflowID: String, key: String, firesAfter duration: Duration, at now: Date) async throws -> (fireAt: Date, fired: Bool) {
        try await database.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT fire_at, fired FROM timer WHERE workflow_id = ? AND timer_key = ?", arguments: [workflowID, key]) {
                return (Date(timeIntervalSince1970: row["fire_at"]), (row["fired"] as Int) != 0)
            }
            let fireAt = now.addingTimeInterval(Double(duration.wholeMilliseconds) / 1000)
            try db.execute(sql: "INSERT INTO timer (workflow_id, timer_key, fire_at) VALUES (?, ?, ?)", arguments: [workflowID, key, fireAt.timeIntervalSince1970])
            try Self.append(db, workflowID: workflowID, kind: .timerStarted, stepKey: key, detail: "fires at \(ISO8601DateFormatter().string(from: fireAt))", at: now)
            return (fireAt, false)
        }
    }

    public func markTimerFired(workflowID: String, key: String, at now: Date) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE timer SET fired = 1 WHERE workflow_id = ? AND timer_key = ? AND fired = 0", arguments: [workflowID, key])
            if db.changesCount > 0 {
                try Self.append(db, workflowID: workflowID, kind: .timerFired, stepKey: key, detail: "", at: now)
            }
        }
    }

    // MARK: Schedules

    public func upsertSchedule(_ schedule: ScheduleRecord) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO schedule (name, workflow, input, every_seconds, cron, next_run_at, last_run_at, runs) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET workflow = excluded.workflow, input = excluded.input, every_seconds = excluded.every_seconds,
                    cron = excluded.cron, next_run_at = excluded.next_run_at
                    """,
                arguments: [
                    schedule.name, schedule.workflow, schedule.input.text, schedule.everySeconds, schedule.cron,
                    schedule.nextRunAt.timeIntervalSince1970, schedule.lastRunAt?.timeIntervalSince1970, schedule.runs,
                ]
            )
        }
    }

    /// Removes a schedule; returns whether there was one.
    public func removeSchedule(name: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM schedule WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    public func schedules() async throws -> [ScheduleRecord] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM schedule ORDER BY name").map { row in
                ScheduleRecord(
                    name: row["name"], workflow: row["workflow"], input: JSONText(unchecked: row["input"]),
                    everySeconds: row["every_seconds"], cron: row["cron"], nextRunAt: Date(timeIntervalSince1970: row["next_run_at"]),
                    lastRunAt: (row["last_run_at"] as Double?).map { Date(timeIntervalSince1970: $0) }, runs: row["runs"]
                )
            }
        }
    }

    /// Records that a schedule ran at `runAt` and next runs at `nextRunAt`.
    public func recordScheduleRun(name: String, runAt: Date, nextRunAt: Date) async throws {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE schedule SET last_run_at = ?, next_run_at = ?, runs = runs + 1 WHERE name = ?",
                arguments: [runAt.timeIntervalSince1970, nextRunAt.timeIntervalSince1970, name]
            )
        }
    }

    // MARK: Rows

    private static func append(_ db: Database, workflowID: String, kind: HistoryEvent.Kind, stepKey: String?, detail: String, at: Date) throws {
        try db.execute(
            sql: "INSERT INTO history (workflow_id, at, kind, step_key, detail) VALUES (?, ?, ?, ?, ?)",
            arguments: [workflowID, at.timeIntervalSince1970, kind.rawValue, stepKey, detail]
        )
    }

    private static func fetchWorkflow(_ db: Database, id: String) throws -> WorkflowRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM workflow WHERE id = ?", arguments: [id]).map(workflowRecord)
    }

    private static func fetchStep(_ db: Database, messageID: String) throws -> StepRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM step WHERE message_id = ?", arguments: [messageID]).map(stepRecord)
    }

    private static func fetchStepHead(_ db: Database, messageID: String) throws -> StepHead? {
        try Row.fetchOne(db, sql: "SELECT workflow_id, step_key, activity, status, sends FROM step WHERE message_id = ?", arguments: [messageID]).map { row in
            StepHead(
                messageID: messageID, workflowID: row["workflow_id"], stepKey: row["step_key"], activity: row["activity"],
                status: StepStatus(rawValue: row["status"]) ?? .scheduled, sends: row["sends"]
            )
        }
    }

    /// Whether the workflow exists and has not ended.
    private static func isRunning(_ db: Database, workflowID: String) throws -> Bool {
        guard let status = try String.fetchOne(db, sql: "SELECT status FROM workflow WHERE id = ?", arguments: [workflowID]) else { return false }
        return !(WorkflowStatus(rawValue: status)?.isFinished ?? true)
    }

    private static func fetchRecipients(_ db: Database, workflowID: String) throws -> [ResultRecipient] {
        try Row.fetchAll(db, sql: "SELECT reply_to, correlation_id FROM result_recipient WHERE workflow_id = ?", arguments: [workflowID]).map {
            ResultRecipient(replyTo: $0["reply_to"], correlationID: $0["correlation_id"])
        }
    }

    private static func workflowRecord(_ row: Row) throws -> WorkflowRecord {
        WorkflowRecord(
            id: row["id"], name: row["name"], status: WorkflowStatus(rawValue: row["status"]) ?? .failed,
            input: JSONText(unchecked: row["input"]), output: (row["output"] as String?).map(JSONText.init(unchecked:)),
            error: try (row["error"] as String?).map { try decode(ActivityFailure.self, $0) }, parkedReason: row["parked_reason"],
            cancelRequested: (row["cancel_requested"] as Int) != 0, startedAt: Date(timeIntervalSince1970: row["started_at"]),
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]), finishedAt: (row["finished_at"] as Double?).map { Date(timeIntervalSince1970: $0) }
        )
    }

    private static func stepRecord(_ row: Row) throws -> StepRecord {
        StepRecord(
            messageID: row["message_id"], workflowID: row["workflow_id"], stepKey: row["step_key"], activity: row["activity"],
            queue: row["queue"], input: JSONText(unchecked: row["input"]), options: try decode(ActivityOptions.self, row["options"]),
            status: StepStatus(rawValue: row["status"]) ?? .scheduled, sends: row["sends"],
            scheduledAt: Date(timeIntervalSince1970: row["scheduled_at"]), sentAt: (row["sent_at"] as Double?).map { Date(timeIntervalSince1970: $0) },
            lastHeardAt: (row["last_heard_at"] as Double?).map { Date(timeIntervalSince1970: $0) }, attempt: row["attempt"],
            result: (row["result"] as String?).map(JSONText.init(unchecked:)),
            error: try (row["error"] as String?).map { try decode(ActivityFailure.self, $0) }
        )
    }

    private static func encode<Value: Encodable>(_ value: Value) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    private static func decode<Value: Decodable>(_ type: Value.Type, _ text: String) throws -> Value {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

/// The workflow store could not be opened or read.
public struct WorkflowStoreError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
