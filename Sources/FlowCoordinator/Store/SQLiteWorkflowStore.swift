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
    let database: any DatabaseWriter
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
        return try await write { db in
            if let recipient = start.recipient {
                try RecipientRow(workflowID: start.id, replyTo: recipient.replyTo, correlationID: recipient.correlationID).insert(db, onConflict: .ignore)
            }
            if let existing = try WorkflowRow.fetchOne(db, key: start.id) { return .existing(try existing.record()) }
            let row = WorkflowRow(
                id: start.id, name: start.name, status: .running, input: start.input.text, cancelRequested: false, startedAt: now, updatedAt: now,
                traceContext: traceText
            )
            try row.insert(db)
            try db.execute(sql: "UPDATE workflow SET epoch = ? WHERE id = ?", arguments: [epoch, start.id])
            try Self.record(db, workflowID: start.id, .workflowStarted(name: start.name, input: start.input), at: now)
            try Self.project(db, workflowID: start.id, lines: WorkflowProjection.lines(for: .workflowStarted(name: start.name, input: start.input), stepKey: nil), at: now)
            return .created(try row.record())
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
        _ = try await write { db in
            try RecipientRow.deleteOne(db, key: ["workflow_id": workflowID, "reply_to": recipient.replyTo, "correlation_id": recipient.correlationID])
        }
    }

    // MARK: History

    static func project(_ db: Database, workflowID: String, lines: [WorkflowProjection.Line], at: Date) throws {
        for line in lines {
            try db.cachedStatement(sql: "INSERT INTO history (workflow_id, at, kind, step_key, detail) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [workflowID, at.timeIntervalSince1970, line.kind.rawValue, line.stepKey, line.detail])
        }
    }

    private static func recipients(_ db: Database, workflowID: String) throws -> [ResultRecipient] {
        try RecipientRow.filter(Column("workflow_id") == workflowID).fetchAll(db).map(\.recipient)
    }
}

