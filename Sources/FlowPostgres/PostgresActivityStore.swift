import FlowCore
import FlowRuntime
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A worker's memory (``ActivityStore``) on a PostgreSQL server that every copy of a
/// deployment shares (`FLOW_ACTIVITY_STORE=postgres://…`): a redelivery that reaches a copy
/// on another host is answered from the reply the first copy recorded, not run again.
///
/// Its tables live beside the workflow store's when both name one database, with their own
/// migration record (`flow_activity_migration`), so neither build refuses the other's.
public final class PostgresActivityStore: ActivityStore {
    public let location: PostgresStoreLocation
    private let running: RunningClient
    private var client: PostgresClient { running.client }
    private let logger: Logger
    private let maximumEntries: Int
    private let retention: Duration
    private let completionsSincePrune = Mutex(0)

    private init(location: PostgresStoreLocation, running: RunningClient, logger: Logger, maximumEntries: Int, retention: Duration) {
        self.location = location
        self.running = running
        self.logger = logger
        self.maximumEntries = maximumEntries
        self.retention = retention
    }

    /// Connects and migrates. ``close()`` ends the connections.
    public static func open(
        _ location: PostgresStoreLocation, maximumConnections: Int = 4, maximumEntries: Int = 1_000_000, retention: Duration = .seconds(7 * 86_400), logger: Logger
    ) async throws -> PostgresActivityStore {
        let store = PostgresActivityStore(
            location: location, running: RunningClient(location, maximumConnections: maximumConnections, logger: logger), logger: logger,
            maximumEntries: maximumEntries, retention: retention)
        do {
            try await RunningClient.check(location, logger: logger)
            try await store.running.migrate(record: "flow_activity_migration", lockKey: Self.migrationLockKey, Self.migrations, logger: logger)
        } catch {
            await store.close()
            throw ActivityFailure.retryable(
                .storeUnavailable,
                "cannot open the activity store at \(location): \(PostgresWorkflowStore.describe(error)). Check that the server runs and that the user may create tables")
        }
        return store
    }

    /// Never edit one that has shipped; add the next.
    private static let migrations: [(name: String, statements: [String])] = [
        ("v1: completed activities and heartbeats", [
            """
            CREATE TABLE completed_activity (
                message_id TEXT COLLATE "C" PRIMARY KEY,
                activity TEXT NOT NULL,
                reply TEXT NOT NULL,
                completed_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX completed_activity_time ON completed_activity (completed_at)",
            """
            CREATE TABLE activity_heartbeat (
                message_id TEXT COLLATE "C" PRIMARY KEY,
                details TEXT NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
        ]),
    ]

    /// "flow" + 1: not the workflow store's lock, so the two migrate side by side.
    private static let migrationLockKey: Int64 = 0x666c_6f78

    public func close() async {
        await running.close()
    }

    public func completedReply(messageID: String) async throws -> ActivityReply? {
        let text = try await run("read the reply of \(messageID)") { connection in
            try await connection.query("SELECT reply FROM completed_activity WHERE message_id = \(messageID)", logger: self.logger)
                .first { try $0("reply", as: String.self) }
        }
        return try text.map { try FlowJSON.decode(ActivityReply.self, from: $0) }
    }

    public func recordCompletion(_ reply: ActivityReply) async throws {
        let text = try FlowJSON.encodeText(reply)
        let now = Date()
        try await run("record the completion of \(reply.messageID)") { connection in
            // One statement, so no transaction: the heartbeat goes with the insert.
            try await connection.query(
                """
                WITH forgotten AS (DELETE FROM activity_heartbeat WHERE message_id = \(reply.messageID))
                INSERT INTO completed_activity (message_id, activity, reply, completed_at) VALUES (\(reply.messageID), \(reply.activity), \(text), \(now))
                ON CONFLICT (message_id) DO UPDATE SET activity = excluded.activity, reply = excluded.reply, completed_at = excluded.completed_at
                """, logger: self.logger)
        }
        // Bounded as the SQLite store is: a prune every 500 completions of this copy.
        let due = completionsSincePrune.withLock { count -> Bool in
            count += 1
            guard count >= 500 else { return false }
            count = 0
            return true
        }
        if due { try await prune() }
    }

    public func recordHeartbeat(messageID: String, details: JSONText) async throws {
        let now = Date()
        try await run("record a heartbeat of \(messageID)") { connection in
            try await connection.query(
                """
                INSERT INTO activity_heartbeat (message_id, details, updated_at) VALUES (\(messageID), \(details.text), \(now))
                ON CONFLICT (message_id) DO UPDATE SET details = excluded.details, updated_at = excluded.updated_at
                """, logger: self.logger)
        }
    }

    public func lastHeartbeat(messageID: String) async throws -> JSONText? {
        let text = try await run("read the heartbeat of \(messageID)") { connection in
            try await connection.query("SELECT details FROM activity_heartbeat WHERE message_id = \(messageID)", logger: self.logger)
                .first { try $0("details", as: String.self) }
        }
        return try text.map { try JSONText(validating: $0) }
    }

    public func completedCount() async throws -> Int {
        try await run("count the completed activities") { connection in
            try await connection.query("SELECT count(*) AS count FROM completed_activity", logger: self.logger).first { Int(try $0("count", as: Int64.self)) } ?? 0
        }
    }

    public func prune() async throws {
        let cutoff = Date().addingTimeInterval(-Double(retention.components.seconds))
        let keep = Int64(maximumEntries)
        try await run("prune the activity store") { connection in
            try await connection.query("DELETE FROM completed_activity WHERE completed_at < \(cutoff)", logger: self.logger)
            try await connection.query("DELETE FROM activity_heartbeat WHERE updated_at < \(cutoff)", logger: self.logger)
            try await connection.query(
                """
                DELETE FROM completed_activity WHERE message_id IN (
                    SELECT message_id FROM completed_activity ORDER BY completed_at DESC, message_id OFFSET \(keep))
                """, logger: self.logger)
        }
    }

    /// Runs `body` on a connection; a failure is the retryable `storeUnavailable` the worker
    /// already handles (it leaves the delivery unacknowledged, to come again).
    private func run<Result: Sendable>(_ action: @autoclosure () -> String, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        do {
            // Bounded as the workflow store's calls are (`PostgresWorkflowStore.operationLimit`).
            let client = self.client
            guard let result = try await answer(by: .now + PostgresWorkflowStore.operationLimit, { try await client.withConnection { connection in try await body(connection) } }) else {
                throw ActivityFailure.retryable(.storeUnavailable, "cannot \(action()) in the activity store at \(location): no answer within \(PostgresWorkflowStore.operationLimit)")
            }
            return result
        } catch let failure as ActivityFailure {
            throw failure
        } catch {
            throw ActivityFailure.retryable(.storeUnavailable, "cannot \(action()) in the activity store at \(location): \(PostgresWorkflowStore.describe(error))")
        }
    }
}
