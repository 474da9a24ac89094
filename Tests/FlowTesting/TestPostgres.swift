import FlowCoordinator
import FlowPostgres
import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server the tests use: the one `scripts/postgres-start` runs (`.ci/run` and
/// the README's test command start it), or `FLOW_TEST_POSTGRES_URL`. Each store a test
/// opens is a new database on it, so suites running side by side never share rows.
///
/// There is no skipping: when no server answers, each test that needs one fails with the
/// reason and the command that starts one.
public enum TestPostgres {
    public static var server: PostgresStoreLocation {
        get throws {
            let environment = ProcessInfo.processInfo.environment
            let port = environment["FLOW_POSTGRES_PORT"] ?? "5440"
            return try PostgresStoreLocation(url: environment["FLOW_TEST_POSTGRES_URL"] ?? "postgres://flow@127.0.0.1:\(port)/flow?sslmode=disable")
        }
    }

    public static let logger: Logger = {
        var logger = Logger(label: "flow.test.postgres")
        logger.logLevel = ProcessInfo.processInfo.environment["FLOW_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    /// A new, empty database on the test server. The first call of a test process drops
    /// the databases earlier runs left (`flow_test_*`, over an hour old, with no one connected).
    public static func newDatabase() async throws -> PostgresStoreLocation {
        let server = try server
        // Named with the time it was made, so the sweep leaves alone what a test process
        // running beside this one (another checkout's) made a moment ago.
        let name = "flow_test_\(Int(Date().timeIntervalSince1970))_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12))"
        try await sweep.value
        try await administer(server) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        return server.database(name)
    }

    private static let sweep = Task {
        try await administer(try server) { connection in
            let rows = try await connection.query(
                "SELECT datname FROM pg_database WHERE datname LIKE 'flow\\_test\\_%' AND datname NOT IN (SELECT datname FROM pg_stat_activity WHERE datname IS NOT NULL)",
                logger: logger
            )
            var names: [String] = []
            for try await name in rows.decode(String.self) { names.append(name) }
            let hourAgo = Int(Date().timeIntervalSince1970) - 3600
            for name in names {
                // Only those made over an hour ago (or before names had times), by a run that
                // is over: a run beside this one may have made one it has not connected to yet.
                let parts = name.split(separator: "_")
                if parts.count == 4, let made = Int(parts[2]), made > hourAgo { continue }
                // Without FORCE: a database another test process uses now stays.
                _ = try? await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name)"), logger: logger)
            }
        }
    }

    /// The first column of the first row `sql` returns on database `location`, as text.
    public static func scalar(_ location: PostgresStoreLocation, _ sql: String) async throws -> String? {
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password, database: location.database, tls: .disable
        )
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: logger)
        do {
            var value: String?
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
                value = try row.makeRandomAccess()[0].decode(String?.self)
                break
            }
            try await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Runs `body` on a connection to the server's `postgres` database.
    public static func administer(_ server: PostgresStoreLocation, _ body: (PostgresConnection) async throws -> Void) async throws {
        let configuration = PostgresConnection.Configuration(
            host: server.host, port: server.port, username: server.username, password: server.password, database: "postgres", tls: .disable
        )
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        } catch {
            throw WorkflowStoreError(
                .unavailable, "these tests need PostgreSQL and none answers at \(server) (\(error)): run scripts/postgres-start, or point FLOW_TEST_POSTGRES_URL at a server"
            )
        }
        do {
            try await body(connection)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
