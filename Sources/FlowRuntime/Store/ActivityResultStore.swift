import FlowCore
import Foundation
import GRDB
import Synchronization

/// A worker's durable memory (``ActivityStore``) in an SQLite file in its data folder: the
/// default. Several worker processes may share it on a
/// local volume (SQLite locks the file). It is bounded: entries older than `retention` and
/// beyond `maximumEntries` are removed as new ones arrive.
public final class ActivityResultStore: Sendable {
    private let database: DatabaseQueue
    private let maximumEntries: Int
    private let retention: Duration
    private let insertsSincePrune = Mutex(0)
    private let batch = Mutex(WriteBatch())

    /// Completions waiting for the current writer, and whether there is one.
    private struct WriteBatch: ~Copyable {
        var writerActive = false
        var waiting: [(CompletedActivityRow, CheckedContinuation<Bool, any Error>)] = []
    }

    /// Opens (or creates) the store at `path`.
    public init(path: String, maximumEntries: Int = 100_000, retention: Duration = .seconds(7 * 86_400)) throws {
        do {
            database = try LocalDatabase.open(path: path)
        } catch {
            throw ActivityFailure.retryable(.storeUnavailable, "cannot open the activity store at \(path): \(error). Check that the data folder is writable")
        }
        self.maximumEntries = maximumEntries
        self.retention = retention
        try FileLock.withExclusive(path: path + ".migrate-lock") { try Self.migrator.migrate(database) }
    }

    /// The stored final reply of a completed activity.
    public func completedReply(messageID: String) async throws -> ActivityReply? {
        // Every delivery asks, so the statement is prepared once and kept (the records'
        // Codable mapping costs more than the lookup itself on this path).
        let text = try await database.read { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT reply FROM completed_activity WHERE message_id = ?"), arguments: [messageID])
        }
        return try text.map { try FlowJSON.decode(ActivityReply.self, from: $0) }
    }

    /// Records a completed activity's reply. Called before the delivery is acknowledged,
    /// so a crash after it still answers the redelivery from here.
    ///
    /// Writes are group-committed: while one transaction runs, the completions that arrive
    /// queue up, and the next writer commits them all at once. SQLite takes one writer at a
    /// time, so under load this turns many small transactions into a few larger ones.
    public func recordCompletion(_ reply: ActivityReply) async throws {
        let entry = CompletedActivityRow(
            messageID: reply.messageID, activity: reply.activity,
            reply: try FlowJSON.encodeText(reply), completedAt: Date()
        )
        let leads = batch.withLock { state -> Bool in
            guard state.writerActive else {
                state.writerActive = true
                return true
            }
            return false
        }
        if !leads {
            // Wait until a writer commits this entry, or hands over the writing to us.
            let mustWrite = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
                let queued = batch.withLock { state -> Bool in
                    guard state.writerActive else {
                        state.writerActive = true
                        return false
                    }
                    state.waiting.append((entry, continuation))
                    return true
                }
                if !queued { continuation.resume(returning: true) }
            }
            guard mustWrite else { return }
        }
        try await commit(own: entry)
    }

    /// Commits `own` with everything queued, settles the queued callers, and passes the
    /// writer's role to the next caller that queued meanwhile, if any.
    private func commit(own: CompletedActivityRow) async throws {
        let followers = batch.withLock { state in
            let taken = state.waiting
            state.waiting.removeAll()
            return taken
        }
        let entries = [own] + followers.map(\.0)
        var failure: (any Error)?
        do {
            try await database.write { db in
                // The hot path of every completed activity: cached statements, no Codable mapping.
                let insert = try db.cachedStatement(sql: "INSERT OR REPLACE INTO completed_activity (message_id, activity, reply, completed_at) VALUES (?, ?, ?, ?)")
                let clearHeartbeat = try db.cachedStatement(sql: "DELETE FROM activity_heartbeat WHERE message_id = ?")
                for entry in entries {
                    try insert.execute(arguments: [entry.messageID, entry.activity, entry.reply, entry.completedAt.timeIntervalSince1970])
                    try clearHeartbeat.execute(arguments: [entry.messageID])
                }
            }
        } catch {
            failure = error
        }
        for (_, continuation) in followers {
            if let failure { continuation.resume(throwing: failure) } else { continuation.resume(returning: false) }
        }
        let next = batch.withLock { state -> CheckedContinuation<Bool, any Error>? in
            guard !state.waiting.isEmpty else {
                state.writerActive = false
                return nil
            }
            return state.waiting.removeFirst().1
        }
        next?.resume(returning: true)
        if let failure { throw failure }

        let due = insertsSincePrune.withLock { count -> Bool in
            count += entries.count
            guard count >= 500 else { return false }
            count = 0
            return true
        }
        if due { try await prune() }
    }

    public func recordHeartbeat(messageID: String, details: JSONText) async throws {
        let row = HeartbeatRow(messageID: messageID, details: details.text, updatedAt: Date())
        try await database.write { db in try row.insert(db, onConflict: .replace) }
    }

    public func lastHeartbeat(messageID: String) async throws -> JSONText? {
        let row = try await database.read { db in try HeartbeatRow.fetchOne(db, key: messageID) }
        return try row.map { try JSONText(validating: $0.details) }
    }

    /// How many completed activities are remembered.
    public func completedCount() async throws -> Int {
        try await database.read { db in try CompletedActivityRow.fetchCount(db) }
    }

    /// Removes entries past the retention period, then the oldest beyond the maximum count.
    public func prune() async throws {
        let cutoff = Date().timeIntervalSince1970 - Double(retention.components.seconds)
        let maximumEntries = self.maximumEntries
        try await database.write { db in
            try db.execute(sql: "DELETE FROM completed_activity WHERE completed_at < ?", arguments: [cutoff])
            try db.execute(sql: "DELETE FROM activity_heartbeat WHERE updated_at < ?", arguments: [cutoff])
            try db.execute(
                sql: """
                    DELETE FROM completed_activity WHERE message_id IN (
                        SELECT message_id FROM completed_activity ORDER BY completed_at DESC LIMIT -1 OFFSET ?)
                    """,
                arguments: [maximumEntries]
            )
        }
    }
}

extension ActivityResultStore {
    /// The store's schema, one migration per version; never edit one that has shipped. A
    /// store from before versions were recorded has `v1`'s tables, which `IF NOT EXISTS` finds.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: completed activities and heartbeats") { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS completed_activity (
                    message_id TEXT PRIMARY KEY,
                    activity TEXT NOT NULL,
                    reply TEXT NOT NULL,
                    completed_at REAL NOT NULL
                );
                CREATE INDEX IF NOT EXISTS completed_activity_time ON completed_activity(completed_at);
                CREATE TABLE IF NOT EXISTS activity_heartbeat (
                    message_id TEXT PRIMARY KEY,
                    details TEXT NOT NULL,
                    updated_at REAL NOT NULL
                );
                """)
        }
        return migrator
    }

    /// The migrations applied to the store, oldest first.
    public func appliedMigrations() throws -> [String] {
        try database.read { db in try Self.migrator.appliedMigrations(db) }
    }

    struct CompletedActivityRow: SnakeCaseColumns, Sendable {
        static let databaseTableName = "completed_activity"
        var messageID: String
        var activity: String
        /// The final reply, as the worker sent it.
        var reply: String
        var completedAt: Date
    }

    struct HeartbeatRow: SnakeCaseColumns, Sendable {
        static let databaseTableName = "activity_heartbeat"
        var messageID: String
        var details: String
        var updatedAt: Date
    }
}
