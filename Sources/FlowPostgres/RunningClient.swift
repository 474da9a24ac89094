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

    /// Connects once, directly, and gives the server's own reason when that fails: a
    /// database that does not exist, a password refused, no server on the port. The pool
    /// alone would retry such a connection for ever, and the store's first call would wait
    /// with it; a store opened with a wrong URL must say so at once.
    static func check(_ location: PostgresStoreLocation, logger: Logger) async throws {
        var configuration: PostgresConnection.Configuration
        if let socketFolder = location.socketFolder {
            configuration = .init(unixSocketPath: "\(socketFolder)/.s.PGSQL.\(location.port)", username: location.username, password: location.password, database: location.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS = switch location.tls {
            case .disable: .disable
            case .prefer: .prefer(try .init(configuration: .makeClientConfiguration()))
            case .require: .require(try .init(configuration: .makeClientConfiguration()))
            }
            configuration = .init(host: location.host, port: location.port, username: location.username, password: location.password, database: location.database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(10)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        try await connection.close()
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
