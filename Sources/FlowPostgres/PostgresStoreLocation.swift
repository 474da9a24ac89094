import FlowCoordinator
import Foundation
import Logging
import PostgresNIO

/// Where a PostgreSQL store lives, read from a libpq-style URL:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require][&host=/socket/folder]`.
/// `postgresql://` is accepted too. A `host` query parameter naming a folder connects over
/// the Unix socket in it, as libpq does.
public struct PostgresStoreLocation: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    /// The folder holding the server's socket `.s.PGSQL.PORT`, when connecting over it.
    public var socketFolder: String?
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(host: String = "127.0.0.1", port: Int = 5432, socketFolder: String? = nil, username: String, password: String? = nil, database: String, tls: TLSMode = .prefer) {
        self.host = host
        self.port = port
        self.socketFolder = socketFolder
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Whether `text` names a PostgreSQL store rather than a SQLite file.
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    public init(url text: String) throws {
        guard Self.isPostgresURL(text), let components = URLComponents(string: text) else {
            throw WorkflowStoreError(.unavailable, "'\(Self.redacting(text))' is not a PostgreSQL URL: write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let user = components.user, !user.isEmpty else {
            throw WorkflowStoreError(.unavailable, "the PostgreSQL URL '\(Self.redacting(text))' names no user: write postgres://USER@HOST/DATABASE")
        }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else {
            throw WorkflowStoreError(.unavailable, "the PostgreSQL URL '\(Self.redacting(text))' names no database: end it with /DATABASE")
        }
        var tls = TLSMode.prefer
        var socketFolder: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value) ?? (value == "allow" ? .prefer : nil) else {
                    throw WorkflowStoreError(.unavailable, "sslmode '\(item.value ?? "")' in the PostgreSQL URL is not one of disable, prefer or require")
                }
                tls = mode
            case "host":
                socketFolder = item.value
            default:
                throw WorkflowStoreError(.unavailable, "the PostgreSQL URL has a parameter '\(item.name)' this store does not know: it takes sslmode and host")
            }
        }
        self.init(
            host: components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1", port: components.port ?? 5432, socketFolder: socketFolder,
            username: user.removingPercentEncoding ?? user, password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: path.removingPercentEncoding ?? path, tls: tls
        )
    }

    /// The URL without its password, for logs and errors.
    public var description: String {
        let credentials = password == nil ? username : "\(username):***"
        let place = socketFolder.map { "?host=\($0)" } ?? ""
        return "postgres://\(credentials)@\(host):\(port)/\(database)\(place)"
    }

    /// The URL that names this location, password included: for handing it to another process.
    public var url: String {
        func encoded(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? text }
        let credentials = password.map { "\(encoded(username)):\(encoded($0))" } ?? encoded(username)
        var query = ["sslmode=\(tls.rawValue)"]
        if let socketFolder { query.append("host=\(socketFolder.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? socketFolder)") }
        return "postgres://\(credentials)@\(host):\(port)/\(database)?\(query.joined(separator: "&"))"
    }

    /// The same server and credentials, another database (the test set-up makes one per suite).
    public func database(_ name: String) -> PostgresStoreLocation {
        var location = self
        location.database = name
        return location
    }

    var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketFolder {
            configuration = PostgresClient.Configuration(
                unixSocketPath: "\(socketFolder)/.s.PGSQL.\(port)", username: username, password: password, database: database
            )
        } else {
            let tls: PostgresClient.Configuration.TLS = switch self.tls {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
            configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [
            ("application_name", "antifragileflow"),
            // Every transaction here takes milliseconds. One left open by a process that
            // stopped in it (SIGSTOP, a frozen VM) would hold its row locks, and with them a
            // standby's takeover, for as long as the process stays stopped: the server ends it.
            ("idle_in_transaction_session_timeout", "5000"),
        ]
        return configuration
    }

    /// `text` with its password, if any, replaced by `***`.
    public static func redacting(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? text
    }
}

extension PostgresStoreLocation {
    /// Creates database `name` on this location's server (connecting to its `postgres`
    /// database with the same credentials), and returns its location: for benchmarks and
    /// tests that want a store of their own.
    public func creatingDatabase(_ name: String, logger: Logger) async throws -> PostgresStoreLocation {
        try await administer(logger: logger) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(Self.quoted(name))"), logger: logger)
        }
        return database(name)
    }

    /// Drops database `name`, ending the sessions still connected to it.
    public func droppingDatabase(_ name: String, logger: Logger) async throws {
        try await administer(logger: logger) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(Self.quoted(name)) WITH (FORCE)"), logger: logger)
        }
    }

    private func administer(logger: Logger, _ body: (PostgresConnection) async throws -> Void) async throws {
        var configuration = database("postgres").clientConfiguration
        configuration.options.maximumConnections = 1
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let task = Task { await client.run() }
        defer { task.cancel() }
        do {
            try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw WorkflowStoreError(.unavailable, "cannot administer the PostgreSQL server at \(self): \(PostgresWorkflowStore.describe(error))")
        }
    }

    private static func quoted(_ identifier: String) -> String { "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
}
