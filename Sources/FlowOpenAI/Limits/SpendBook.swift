import FlowCore
import Foundation
import GRDB

/// The deployment's OpenAI spend, one row per call, in a SQLite file every copy of the
/// actor opens on the data volume they share.
///
/// Booking and the budget check are one `BEGIN IMMEDIATE` transaction, so two copies
/// cannot both see room for the last call; SQLite's file locks order them. The file is
/// written with `synchronous = FULL`: a booking that returned survives even a power loss,
/// so spend is never under-counted. Rows older than a week are dropped when a copy starts.
///
/// SQLite's locking needs the copies on one host (containers on one volume, or processes
/// on one disk); it is not safe over NFS. Copies on several hosts need the shared store of
/// the coordinator fail-over work (docs/openai.md).
public final class SpendBook: SpendStore {
    public let path: String
    public var location: String { path }
    private let database: DatabaseQueue

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        database = try DatabaseQueue(path: path, configuration: configuration)
        try FileLock.withExclusive(path: path + ".migrate-lock") { try Self.migrator.migrate(database) }
        try database.write { db in
            try db.execute(sql: "DELETE FROM openai_calls WHERE booked_at < ?", arguments: [Date().timeIntervalSince1970 - 7 * 86_400])
        }
    }

    private init(memory: DatabaseQueue) throws {
        path = ":memory:"
        database = memory
        try Self.migrator.migrate(database)
    }

    /// A book of this process alone, for a client with no data folder.
    static func inMemory() throws -> SpendBook {
        try SpendBook(memory: DatabaseQueue())
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: calls booked and settled") { db in
            try db.execute(sql: """
                CREATE TABLE openai_calls (
                    id TEXT PRIMARY KEY,
                    day TEXT NOT NULL,
                    model TEXT NOT NULL,
                    estimate_usd REAL NOT NULL,
                    cost_usd REAL,
                    booked_at REAL NOT NULL,
                    settled_at REAL
                );
                CREATE INDEX openai_calls_day ON openai_calls (day);
                """)
        }
        return migrator
    }

    /// Books a call at `estimateUSD` on `day` unless the day's spend (settled calls at
    /// their cost, open ones at their estimate) has reached `budgetUSD`; returns the day's
    /// spend with the booking.
    public func book(id: String, day: String, model: String, estimateUSD: Double, budgetUSD: Double?) throws -> Double {
        try database.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                let spent = try Self.spent(db, day: day)
                if let budgetUSD, spent >= budgetUSD { throw SpendRefusal(spentUSD: spent) }
                try db.execute(
                    sql: "INSERT INTO openai_calls (id, day, model, estimate_usd, booked_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [id, day, model, estimateUSD, Date().timeIntervalSince1970]
                )
                return .commit
            }
            return try Self.spent(db, day: day)
        }
    }

    /// Sets a booked call's real cost.
    public func settle(id: String, costUSD: Double) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE openai_calls SET cost_usd = ?, settled_at = ? WHERE id = ?", arguments: [costUSD, Date().timeIntervalSince1970, id])
        }
    }

    public func spent(day: String) throws -> Double {
        try database.read { try Self.spent($0, day: day) }
    }

    public func spentByModel(day: String) throws -> [String: Double] {
        try database.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT model, SUM(COALESCE(cost_usd, estimate_usd)) AS spent FROM openai_calls WHERE day = ? GROUP BY model", arguments: [day])
            return Dictionary(rows.map { ($0["model"] as String, $0["spent"] as Double) }, uniquingKeysWith: +)
        }
    }

    /// Calls booked on `day` and not settled: in flight, or lost with a copy that died.
    public func openBookings(day: String) throws -> Int {
        try database.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM openai_calls WHERE day = ? AND cost_usd IS NULL", arguments: [day]) ?? 0 }
    }

    private static func spent(_ db: Database, day: String) throws -> Double {
        try Double.fetchOne(db, sql: "SELECT COALESCE(SUM(COALESCE(cost_usd, estimate_usd)), 0) FROM openai_calls WHERE day = ?", arguments: [day]) ?? 0
    }
}
