import FlowCore
import FlowRuntime
import Foundation
import GRDB

/// The coordinator's store in one SQLite file in its data folder: the default, with
/// nothing to set up. Write-ahead logging with `synchronous = NORMAL` keeps a commit
/// through the crash of the process, which is what this store is for. The schema is
/// versioned (`SQLiteWorkflowStore+Schema.swift`); opening a store migrates it in place.
public final class SQLiteWorkflowStore: WorkflowStore {
    /// A pool, so that queries (`flow.workflow.list`, the console) read beside the
    /// coordinator's writes instead of waiting for them; a read-only queue for commands that
    /// only look.
    package let database: any DatabaseWriter
    /// The store's file.
    public let path: String
    /// Commits the writes of concurrent workflows together; nil writes one transaction each.
    private let groupCommit: GroupCommit?

    /// Opens (or creates) the store at `path`. `readOnly` is for commands that only look
    /// (`flow workflow list|show --data-dir`), while a coordinator runs or not.
    /// `groupCommit` commits the writes that wait together (`GroupCommit.swift`); without
    /// it each write is a transaction of its own, which `flow-workflow-benchmark` compares.
    public init(path: String, readOnly: Bool = false, groupCommit: Bool = true) throws {
        self.path = path
        do {
            let database: any DatabaseWriter = readOnly ? try LocalDatabase.open(path: path, readOnly: true) : try LocalDatabase.openPool(path: path)
            if !readOnly { try Self.migrator.migrate(database) }
            self.database = database
            self.groupCommit = groupCommit && !readOnly ? GroupCommit(database) : nil
        } catch {
            throw WorkflowStoreError("cannot open the workflow store at \(path): \(error). Check that the coordinator's data folder exists and is writable")
        }
    }

    /// What group commit did so far (all zero without it).
    public var commitStatistics: GroupCommitStatistics { groupCommit?.statistics ?? GroupCommitStatistics() }

    /// Runs one write: in the next group commit, or in a transaction of its own.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if let groupCommit { return try await groupCommit.write(body) }
        return try await database.write(body)
    }

    /// The migrations applied to the store, oldest first.
    public func appliedMigrations() throws -> [String] {
        try database.read { db in try Self.migrator.appliedMigrations(db) }
    }

    // MARK: Workflows

    public func create(_ start: WorkflowStart, epoch: Int64, at now: Date) async throws -> WorkflowStartOutcome {
        let traceText = start.traceContext.isEmpty ? nil : String(decoding: try FlowJSON.encode(start.traceContext), as: UTF8.self)
        let event = WorkflowEvent.workflowStarted(name: start.name, input: start.input)
        let payload = try event.payloadText()
        // Every workflow starts here: values bound to cached statements, and the record
        // built from what was written rather than read back.
        return try await write { db in
            if let recipient = start.recipient {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO result_recipient (workflow_id, reply_to, correlation_id) VALUES (?, ?, ?)")
                    .execute(arguments: [start.id, recipient.replyTo, recipient.correlationID])
            }
            let created = try String.fetchOne(
                db.cachedStatement(sql: """
                    INSERT INTO workflow (id, name, status, input, cancel_requested, started_at, updated_at, trace_context, epoch, last_sequence, parent_id, parent_position)
                    VALUES (?, ?, 'running', ?, 0, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT(id) DO NOTHING RETURNING id
                    """),
                arguments: [
                    start.id, start.name, start.input.text, now.timeIntervalSince1970, now.timeIntervalSince1970, traceText, epoch, start.parent?.workflowID,
                    start.parent?.position,
                ]
            )
            guard created != nil else {
                guard let existing = try WorkflowRow.fetchOne(db, key: start.id) else { throw WorkflowStoreError(.unavailable, "workflow \(start.id) exists and does not") }
                return .existing(try existing.record())
            }
            try db.cachedStatement(sql: "INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload) VALUES (?, 1, ?, ?, NULL, ?, ?)")
                .execute(arguments: [start.id, epoch, event.kind, now.timeIntervalSince1970, payload])
            try Self.project(db, workflowID: start.id, lines: WorkflowProjection.lines(for: event, stepKey: nil), at: now)
            return .created(WorkflowRecord(
                id: start.id, name: start.name, status: .running, input: start.input, cancelRequested: false, startedAt: now, updatedAt: now,
                traceContext: start.traceContext, parent: start.parent
            ))
        }
    }

    public func workflow(id: String) async throws -> WorkflowRecord? {
        try await database.read { db in try WorkflowRow.fetchOne(db, key: id)?.record() }
    }


    public func unfinishedWorkflows() async throws -> [WorkflowRecord] {
        try await database.read { db in
            try WorkflowRow.filter([WorkflowStatus.running.rawValue, WorkflowStatus.parked.rawValue].contains(Column("status")))
                .order(Column("started_at")).fetchAll(db).map { try $0.record() }
        }
    }

    // MARK: Results

    public func recipients(workflowID: String) async throws -> [ResultRecipient] {
        try await database.read { db in try Self.recipients(db, workflowID: workflowID) }
    }

    public func finishedWithRecipients() async throws -> [WorkflowRecord] {
        try await database.read { db in
            try WorkflowRow.filter(sql: "status IN ('completed', 'failed', 'cancelled') AND id IN (SELECT workflow_id FROM result_recipient)")
                .fetchAll(db).map { try $0.record() }
        }
    }

    public func removeRecipient(workflowID: String, _ recipient: ResultRecipient) async throws {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM result_recipient WHERE workflow_id = ? AND reply_to = ? AND correlation_id = ?")
                .execute(arguments: [workflowID, recipient.replyTo, recipient.correlationID])
        }
    }

    // MARK: History

    static func project(_ db: Database, workflowID: String, lines: [WorkflowProjection.Line], at: Date) throws {
        for line in lines {
            try db.cachedStatement(sql: "INSERT INTO history (workflow_id, at, kind, step_key, detail) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [workflowID, at.timeIntervalSince1970, line.kind.rawValue, line.stepKey, line.detail])
        }
    }

    /// Read once per finished workflow: a cached statement, no record.
    private static func recipients(_ db: Database, workflowID: String) throws -> [ResultRecipient] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT reply_to, correlation_id FROM result_recipient WHERE workflow_id = ?"), arguments: [workflowID])
            .map { ResultRecipient(replyTo: $0[0], correlationID: $0[1]) }
    }
}

