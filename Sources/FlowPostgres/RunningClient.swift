import Logging
import PostgresNIO

/// A postgres-nio client and the task that runs it: what each store of this module holds.
/// (A `PostgresClient` does nothing until its `run()` runs; cancelling that task closes its
/// connections.)
struct RunningClient: Sendable {
    let client: PostgresClient
    private let task: Task<Void, Never>

    init(_ location: PostgresStoreLocation, maximumConnections: Int, logger: Logger) {
        var configuration = location.clientConfiguration
        configuration.options.maximumConnections = maximumConnections
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        task = Task { await client.run() }
    }

    /// Closes the connections; calls made after it fail.
    func close() async {
        task.cancel()
        await task.value
    }

    /// Applies the `migrations` that `table` does not record yet, in order, in one
    /// transaction, under the advisory lock `lockKey`, so copies that open a database at
    /// once migrate it once. Each store keeps its own record table, so no store refuses a
    /// database another's newer build migrated.
    func migrate(record table: String, lockKey: Int64, _ migrations: [(name: String, statements: [String])], logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
            try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE TABLE IF NOT EXISTS \(table) (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"), logger: logger)
            let applied = try await connection.query(PostgresQuery(unsafeSQL: "SELECT name FROM \(table)"), logger: logger).all { try $0("name", as: String.self) }
            for (name, statements) in migrations where !applied.contains(name) {
                for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                var insert = PostgresQuery(unsafeSQL: "INSERT INTO \(table) (name) VALUES ($1)")
                try insert.binds.append(name, context: .default)
                try await connection.query(insert, logger: logger)
            }
        }
    }
}
