import FlowCoordinator
import Foundation
import GRDB
import PostgresNIO

/// Moves a SQLite workflow store into an empty PostgreSQL one (`flow store migrate`): every
/// row of every table, as it is, in one transaction, then the same count of each on both
/// sides. Rows, not replayed events: a replay would rebuild the projections but lose what
/// is not an event (delivery notes, their history lines, the runs kept under
/// `<id>@run-<n>`), and the two schemas hold the same columns by design
/// (`PostgresWorkflowStore+Schema.swift`).
public enum PostgresStoreImport {
    /// How many rows of one table each side holds after the copy.
    public struct TableCount: Sendable, Equatable, CustomStringConvertible {
        public var table: String
        public var source: Int
        public var destination: Int

        public var description: String { "\(table) \(source)" + (source == destination ? "" : " (destination \(destination))") }
    }

    /// How a column's SQLite value becomes PostgreSQL's.
    enum Kind {
        case text, integer, real, time, bool

        var sqlType: String {
            switch self {
            case .text: "text"
            case .integer: "bigint"
            case .real: "double precision"
            case .time: "timestamptz"
            case .bool: "boolean"
            }
        }
    }

    /// A table to copy: its columns and the key it is read in order of, a page at a time.
    struct Table {
        var name: String
        var columns: [(String, Kind)]
        var key: [String]
        /// Ids the server gives out itself (`GENERATED ALWAYS`), kept from the source.
        var identity = false
        /// A column SQLite does not have, and the SQL that gives it from the row's (`v.`).
        var derived: (column: String, expression: String)?
    }

    static let tables: [Table] = [
        Table(name: "workflow", columns: [
            ("id", .text), ("name", .text), ("status", .text), ("input", .text), ("output", .text), ("error", .text), ("parked_reason", .text),
            ("divergence", .text), ("cancel_requested", .bool), ("started_at", .time), ("updated_at", .time), ("finished_at", .time),
            ("trace_context", .text), ("last_sequence", .integer), ("epoch", .integer), ("parent_id", .text), ("parent_position", .integer),
            ("memo", .text), ("run", .integer), ("chain", .text), ("run_request", .text),
        ], key: ["id"], derived: (column: "partition", expression: PostgresWorkflowStore.partitionExpression("coalesce(v.chain, v.id)"))),
        Table(name: "workflow_event", columns: [
            ("workflow_id", .text), ("sequence", .integer), ("epoch", .integer), ("kind", .text), ("position", .integer), ("recorded_at", .time), ("payload", .text),
        ], key: ["workflow_id", "sequence"]),
        Table(name: "result_recipient", columns: [("workflow_id", .text), ("reply_to", .text), ("correlation_id", .text)], key: ["workflow_id", "reply_to", "correlation_id"]),
        Table(name: "step", columns: [
            ("message_id", .text), ("workflow_id", .text), ("step_key", .text), ("activity", .text), ("queue", .text), ("input", .text), ("options", .text),
            ("status", .text), ("sends", .integer), ("scheduled_at", .time), ("sent_at", .time), ("last_heard_at", .time), ("attempt", .integer),
            ("result", .text), ("error", .text), ("position", .integer), ("heartbeat", .text),
        ], key: ["message_id"]),
        Table(name: "timer", columns: [("workflow_id", .text), ("timer_key", .text), ("fire_at", .time), ("fired", .bool), ("position", .integer)], key: ["workflow_id", "timer_key"]),
        Table(name: "history", columns: [
            ("id", .integer), ("workflow_id", .text), ("at", .time), ("kind", .text), ("step_key", .text), ("detail", .text),
        ], key: ["id"], identity: true),
        Table(name: "workflow_attribute", columns: [("workflow_id", .text), ("key", .text), ("text_value", .text), ("number_value", .real)], key: ["workflow_id", "key"]),
        Table(name: "schedule", columns: [
            ("name", .text), ("workflow", .text), ("input", .text), ("every_seconds", .integer), ("cron", .text), ("next_run_at", .time), ("last_run_at", .time),
            ("runs", .integer), ("overlap", .text), ("catchup_window_seconds", .integer), ("jitter_seconds", .integer), ("paused", .bool), ("pause_note", .text),
            ("buffered", .text), ("last_workflow_id", .text), ("skipped", .integer),
        ], key: ["name"]),
    ]

    /// Copies every row of `source` into `destination`, which must hold no workflow and no
    /// schedule, in one transaction: a copy that fails leaves the destination as it was.
    /// `progress` hears each table's rows as they go. Returns each table's counts, which
    /// agree, or throws naming the first that does not.
    public static func copy(
        from source: SQLiteWorkflowStore, to destination: PostgresWorkflowStore, pageSize: Int = 500, progress: @escaping @Sendable (String, Int) -> Void = { _, _ in }
    ) async throws -> [TableCount] {
        try await destination.transaction("copy the SQLite store \(source.path) in", limit: nil) { connection in
            let occupied = try await connection.query("SELECT (SELECT count(*) FROM workflow) + (SELECT count(*) FROM schedule) AS rows", logger: destination.logger)
                .first { try $0("rows", as: Int64.self) } ?? 0
            guard occupied == 0 else {
                throw WorkflowStoreError(.unavailable, "the destination \(destination.location) already holds \(occupied) workflows and schedules: migrate into an empty store")
            }
            var counts: [TableCount] = []
            for table in tables {
                var after: [DatabaseValue]?
                var copied = 0
                while true {
                    let key = after
                    let page = try await source.database.read { db in try rows(of: table, after: key, limit: pageSize, in: db) }
                    guard !page.isEmpty else { break }
                    try await insert(page, into: table, on: connection, logger: destination)
                    copied += page.count
                    progress(table.name, copied)
                    after = table.key.map { key in page.last![table.columns.firstIndex { $0.0 == key }!] }
                }
                if table.identity {
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "SELECT setval(pg_get_serial_sequence('\(table.name)', 'id'), coalesce((SELECT max(id) FROM \(table.name)), 0) + 1, false)"),
                        logger: destination.logger)
                }
                let sourceCount = try await source.database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table.name)") ?? 0 }
                let destinationCount = try await connection.query(PostgresQuery(unsafeSQL: "SELECT count(*) AS rows FROM \(table.name)"), logger: destination.logger)
                    .first { Int(try $0("rows", as: Int64.self)) } ?? 0
                let count = TableCount(table: table.name, source: sourceCount, destination: destinationCount)
                guard count.source == count.destination else {
                    throw WorkflowStoreError(
                        .unavailable, "table \(table.name) has \(count.source) rows in \(source.path) but \(count.destination) were copied: nothing was kept. Stop every coordinator on the source and run it again")
                }
                counts.append(count)
            }
            return counts
        }
    }

    /// A page of `table`'s rows after key `after`, in key order.
    private static func rows(of table: Table, after: [DatabaseValue]?, limit: Int, in db: Database) throws -> [[DatabaseValue]] {
        let columns = table.columns.map(\.0).joined(separator: ", ")
        let key = table.key.joined(separator: ", ")
        let condition = after == nil ? "" : "WHERE (\(key)) > (\(table.key.map { _ in "?" }.joined(separator: ", ")))"
        return try Row.fetchAll(
            db, sql: "SELECT \(columns) FROM \(table.name) \(condition) ORDER BY \(key) LIMIT ?",
            arguments: StatementArguments((after ?? []) + [limit.databaseValue])
        ).map { row in Array(row.databaseValues) }
    }

    private static func insert(_ rows: [[DatabaseValue]], into table: Table, on connection: PostgresConnection, logger store: PostgresWorkflowStore) async throws {
        var bindings = PostgresBindings(capacity: rows.count * table.columns.count)
        var tuples: [String] = []
        var bound = 0
        for row in rows {
            var placeholders: [String] = []
            for (value, (column, kind)) in zip(row, table.columns) {
                try bind(value, as: kind, column: "\(table.name).\(column)", to: &bindings)
                bound += 1
                // Typed, because a null is bound without one.
                placeholders.append("$\(bound)::\(kind.sqlType)")
            }
            tuples.append("(" + placeholders.joined(separator: ", ") + ")")
        }
        let overriding = table.identity ? " OVERRIDING SYSTEM VALUE" : ""
        let columns = table.columns.map(\.0).joined(separator: ", ")
        let sql = if let derived = table.derived {
            // Each value's type from its column: a VALUES list in a subquery has no target to take it from.
            "INSERT INTO \(table.name) (\(columns), \(derived.column)) SELECT v.*, \(derived.expression) FROM (VALUES \(tuples.joined(separator: ", "))) AS v(\(columns))"
        } else {
            "INSERT INTO \(table.name) (\(columns))\(overriding) VALUES \(tuples.joined(separator: ", "))"
        }
        try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: store.logger)
    }

    /// One SQLite value as the PostgreSQL column's type: times are seconds since 1970 there.
    private static func bind(_ value: DatabaseValue, as kind: Kind, column: String, to bindings: inout PostgresBindings) throws {
        switch (value.storage, kind) {
        case (.null, .text): bindings.append(String?.none)
        case (.null, .integer): bindings.append(Int64?.none)
        case (.null, .real): bindings.append(Double?.none)
        case (.null, .time): bindings.append(Date?.none)
        case (.null, .bool): bindings.append(Bool?.none)
        case (.string(let text), .text): bindings.append(text)
        case (.int64(let number), .integer): bindings.append(number)
        case (.int64(let number), .real): bindings.append(Double(number))
        case (.double(let number), .real): bindings.append(number)
        case (.double(let seconds), .time): bindings.append(Date(timeIntervalSince1970: seconds))
        case (.int64(let seconds), .time): bindings.append(Date(timeIntervalSince1970: Double(seconds)))
        case (.int64(let flag), .bool): bindings.append(flag != 0)
        default:
            throw WorkflowStoreError(.unreadable, "column \(column) holds \(value), which is not the \(kind) this store keeps there: the SQLite store was edited by hand")
        }
    }
}
