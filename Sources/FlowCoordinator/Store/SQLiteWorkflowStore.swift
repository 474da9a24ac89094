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

    /// Opens (or creates) the store at `path`. `readOnly` is for commands that only look
    /// (`flow workflow list|show --data-dir`), while a coordinator runs or not.
    public init(path: String, readOnly: Bool = false) throws {
        do {
            database = readOnly ? try LocalDatabase.open(path: path, readOnly: true) : try LocalDatabase.openPool(path: path)
            if !readOnly { try Self.migrator.migrate(database) }
        } catch {
            throw WorkflowStoreError("cannot open the workflow store at \(path): \(error). Check that the coordinator's data folder exists and is writable")
        }
    }

    /// The migrations applied to the store, oldest first.
    public func appliedMigrations() throws -> [String] {
        try database.read { db in try Self.migrator.appliedMigrations(db) }
    }

    // MARK: Workflows

    public func startWorkflow(
        id: String, name: String, input: JSONText, recipient: ResultRecipient?, traceContext: [String: String], at now: Date
    ) async throws -> WorkflowStartOutcome {
        let traceText = traceContext.isEmpty ? nil : String(decoding: try FlowJSON.encode(traceContext), as: UTF8.self)
        return try await database.write { db in
            if let recipient {
                try RecipientRow(workflowID: id, replyTo: recipient.replyTo, correlationID: recipient.correlationID).insert(db, onConflict: .ignore)
            }
            if let existing = try WorkflowRow.fetchOne(db, key: id) { return .existing(try existing.record()) }
            let row = WorkflowRow(
                id: id, name: name, status: .running, input: input.text, cancelRequested: false, startedAt: now, updatedAt: now, traceContext: traceText
            )
            try row.insert(db)
            try Self.record(db, workflowID: id, .workflowStarted(name: name, input: input), at: now)
            try Self.append(db, workflowID: id, kind: .workflowStarted, stepKey: nil, detail: "\(name) with input \(input.text.prefix(500))", at: now)
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

    public func finishWorkflow(id: String, status: WorkflowStatus, output: JSONText?, error: ActivityFailure?, at now: Date) async throws -> (WorkflowRecord, [ResultRecipient])? {
        try await database.write { db in
            guard var row = try WorkflowRow.fetchOne(db, key: id), !row.status.isFinished else { return nil }
            row.status = status
            row.output = output?.text
            row.error = try error.map { try FlowJSON.encodeText($0) }
            row.parkedReason = nil
            row.updatedAt = now
            row.finishedAt = now
            try row.update(db)
            let ending: WorkflowEvent = switch status {
            case .completed: .workflowCompleted(output: output ?? .null)
            case .cancelled: .workflowCancelled(failure: error ?? .cancelled("cancelled"))
            case .failed, .running, .parked: .workflowFailed(failure: error ?? .nonRetryable(.unknown, "no error was recorded"))
            }
            try Self.record(db, workflowID: id, ending, at: now)
            let kind: HistoryEvent.Kind = status == .completed ? .workflowCompleted : status == .cancelled ? .workflowCancelled : .workflowFailed
            let detail = output.map { "output \($0.text.prefix(500))" } ?? error.map { "\($0)" } ?? ""
            try Self.append(db, workflowID: id, kind: kind, stepKey: nil, detail: detail, at: now)
            return (try row.record(), try Self.recipients(db, workflowID: id))
        }
    }

    public func requestCancel(id: String, reason: String, at now: Date) async throws -> WorkflowRecord? {
        try await database.write { db in
            guard var row = try WorkflowRow.fetchOne(db, key: id) else { return nil }
            if !row.status.isFinished, !row.cancelRequested {
                row.cancelRequested = true
                row.updatedAt = now
                try row.update(db)
                try Self.record(db, workflowID: id, .cancelRequested(reason: reason), at: now)
                try Self.append(db, workflowID: id, kind: .cancelRequested, stepKey: nil, detail: reason, at: now)
            }
            return try row.record()
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
        _ = try await database.write { db in
            try RecipientRow.deleteOne(db, key: ["workflow_id": workflowID, "reply_to": recipient.replyTo, "correlation_id": recipient.correlationID])
        }
    }

    // MARK: History

    public func appendHistory(workflowID: String, kind: HistoryEvent.Kind, stepKey: String?, detail: String, at now: Date) async throws {
        try await database.write { db in try Self.append(db, workflowID: workflowID, kind: kind, stepKey: stepKey, detail: detail, at: now) }
    }

    public func history(workflowID: String) async throws -> [HistoryEvent] {
        try await database.read { db in
            try HistoryRow.filter(Column("workflow_id") == workflowID).order(Column("id")).fetchAll(db).map(\.event)
        }
    }

    static func append(_ db: Database, workflowID: String, kind: HistoryEvent.Kind, stepKey: String?, detail: String, at: Date) throws {
        try db.cachedStatement(sql: "INSERT INTO history (workflow_id, at, kind, step_key, detail) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [workflowID, at.timeIntervalSince1970, kind.rawValue, stepKey, detail])
    }

    private static func recipients(_ db: Database, workflowID: String) throws -> [ResultRecipient] {
        try RecipientRow.filter(Column("workflow_id") == workflowID).fetchAll(db).map(\.recipient)
    }
}

/// The workflow store could not be opened or read.
public struct WorkflowStoreError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
