import FlowOpenAI
import Foundation
import Logging
import PostgresNIO

/// The OpenAI spend book (``SpendStore``) on a PostgreSQL server, for copies of the OpenAI
/// actor on several hosts (`FLOW_OPENAI_SPEND_STORE=postgres://…`): one daily budget for
/// the whole deployment, where the SQLite book needs the copies on one volume.
///
/// A booking takes a transaction-scoped advisory lock first, so bookings are checked and
/// written one at a time across every copy: two cannot both see room for the last call.
/// (A row lock on a budget row would do the same; the advisory lock needs no row to exist
/// first.) Calls are rows, as in the SQLite book; rows older than a week go when a copy
/// opens the book.
public final class PostgresSpendBook: SpendStore {
    public let server: PostgresStoreLocation
    public var location: String { server.description }
    private let running: RunningClient
    private var client: PostgresClient { running.client }
    private let logger: Logger

    private init(server: PostgresStoreLocation, running: RunningClient, logger: Logger) {
        self.server = server
        self.running = running
        self.logger = logger
    }

    /// Connects, migrates and drops week-old rows. ``close()`` ends the connections.
    public static func open(_ location: PostgresStoreLocation, maximumConnections: Int = 4, logger: Logger) async throws -> PostgresSpendBook {
        let book = PostgresSpendBook(server: location, running: RunningClient(location, maximumConnections: maximumConnections, logger: logger), logger: logger)
        do {
            try await RunningClient.check(location, logger: logger)
            try await book.running.migrate(record: "flow_openai_migration", lockKey: Self.migrationLockKey, Self.migrations, logger: logger)
            let cutoff = Date().addingTimeInterval(-7 * 86_400)
            try await book.client.query("DELETE FROM openai_call WHERE booked_at < \(cutoff)", logger: logger)
        } catch {
            await book.close()
            throw PostgresSpendBookError(
                "cannot open the OpenAI spend book at \(location): \(PostgresWorkflowStore.describe(error)). Check that the server runs and that the user may create tables")
        }
        return book
    }

    /// Never edit one that has shipped; add the next.
    private static let migrations: [(name: String, statements: [String])] = [
        ("v1: calls booked and settled", [
            """
            CREATE TABLE openai_call (
                id TEXT COLLATE "C" PRIMARY KEY,
                day TEXT NOT NULL,
                model TEXT NOT NULL,
                estimate_usd DOUBLE PRECISION NOT NULL,
                cost_usd DOUBLE PRECISION,
                booked_at TIMESTAMPTZ NOT NULL,
                settled_at TIMESTAMPTZ
            )
            """,
            "CREATE INDEX openai_call_day ON openai_call (day)",
        ]),
    ]

    /// "flow" + 2 and + 3: apart from the workflow and activity stores' locks.
    private static let migrationLockKey: Int64 = 0x666c_6f79
    private static let bookingLockKey: Int64 = 0x666c_6f7a

    public func close() async {
        await running.close()
    }

    private enum Booked: Sendable {
        case booked(spent: Double)
        case refused(spent: Double)
    }

    public func book(id: String, day: String, model: String, estimateUSD: Double, budgetUSD: Double?) async throws -> Double {
        let logger = self.logger
        let now = Date()
        let outcome: Booked = try await run("book a call") { connection in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.bookingLockKey))", logger: logger)
                let spent = try await Self.spent(connection, day: day, logger: logger)
                if let budgetUSD, spent >= budgetUSD { return Booked.refused(spent: spent) }
                try await connection.query(
                    "INSERT INTO openai_call (id, day, model, estimate_usd, booked_at) VALUES (\(id), \(day), \(model), \(estimateUSD), \(now))", logger: logger)
                return Booked.booked(spent: spent + estimateUSD)
            }
        }
        switch outcome {
        case .booked(let spent): return spent
        case .refused(let spent): throw SpendRefusal(spentUSD: spent)
        }
    }

    public func settle(id: String, costUSD: Double) async throws {
        let now = Date()
        try await run("settle a call") { connection in
            try await connection.query("UPDATE openai_call SET cost_usd = \(costUSD), settled_at = \(now) WHERE id = \(id)", logger: self.logger)
        }
    }

    public func spent(day: String) async throws -> Double {
        try await run("read the day's spend") { connection in try await Self.spent(connection, day: day, logger: self.logger) }
    }

    public func spentByModel(day: String) async throws -> [String: Double] {
        let rows = try await run("read the day's spend by model") { connection in
            try await connection.query(
                "SELECT model, SUM(COALESCE(cost_usd, estimate_usd)) AS spent FROM openai_call WHERE day = \(day) GROUP BY model", logger: self.logger
            ).all { (try $0("model", as: String.self), try $0("spent", as: Double.self)) }
        }
        return Dictionary(rows, uniquingKeysWith: +)
    }

    public func openBookings(day: String) async throws -> Int {
        try await run("count the open bookings") { connection in
            try await connection.query("SELECT count(*) AS open FROM openai_call WHERE day = \(day) AND cost_usd IS NULL", logger: self.logger)
                .first { Int(try $0("open", as: Int64.self)) } ?? 0
        }
    }

    private static func spent(_ connection: PostgresConnection, day: String, logger: Logger) async throws -> Double {
        try await connection.query(
            "SELECT COALESCE(SUM(COALESCE(cost_usd, estimate_usd)), 0)::double precision AS spent FROM openai_call WHERE day = \(day)", logger: logger
        ).first { try $0("spent", as: Double.self) } ?? 0
    }

    private func run<Result: Sendable>(_ action: @autoclosure () -> String, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        do {
            // Bounded as the workflow store's calls are (`PostgresWorkflowStore.operationLimit`).
            let client = self.client
            guard let result = try await answer(by: .now + PostgresWorkflowStore.operationLimit, { try await client.withConnection { connection in try await body(connection) } }) else {
                throw PostgresSpendBookError("cannot \(action()) in the OpenAI spend book at \(server): no answer within \(PostgresWorkflowStore.operationLimit)")
            }
            return result
        } catch let error as PostgresSpendBookError {
            throw error
        } catch {
            throw PostgresSpendBookError("cannot \(action()) in the OpenAI spend book at \(server): \(PostgresWorkflowStore.describe(error))")
        }
    }
}

/// The spend book could not be reached or used.
public struct PostgresSpendBookError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
