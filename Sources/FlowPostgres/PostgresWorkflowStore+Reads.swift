import FlowCoordinator
import FlowCore
import Foundation
import PostgresNIO

/// The journal, the notes beside it, and what the coordinator and its queries read.
extension PostgresWorkflowStore {
    public func journal(workflowID: String, after: Int64, limit: Int) async throws -> [JournalEntry] {
        try await read("read the journal of workflow \(workflowID)") { connection in
            try await connection.query(
                """
                SELECT sequence, epoch, recorded_at, payload FROM workflow_event
                WHERE workflow_id = \(workflowID) AND sequence > \(after) ORDER BY sequence LIMIT \(Int64(max(0, limit)))
                """, logger: self.logger
            ).all { row in
                let sequence: Int64 = try row("sequence")
                let event: WorkflowEvent
                do {
                    event = try FlowJSON.decode(WorkflowEvent.self, from: try row("payload", as: String.self))
                } catch {
                    throw WorkflowStoreError(
                        .unreadable, "event \(sequence) of workflow \(workflowID)'s journal does not read: \(error). The store was written by another build, or edited by hand")
                }
                return JournalEntry(sequence: sequence, epoch: try row("epoch"), recordedAt: try row("recorded_at"), event: event)
            }
        }
    }

    public func note(_ note: DeliveryNote, at now: Date) async throws {
        try await transaction("note a delivery") { connection in
            let step: (workflowID: String, stepKey: String)?
            switch note {
            case .sent(let messageID, _):
                step = try await connection.query(
                    "UPDATE step SET sends = sends + 1, sent_at = \(now), last_heard_at = NULL WHERE message_id = \(messageID) RETURNING workflow_id, step_key",
                    logger: self.logger
                ).first { (try $0("workflow_id", as: String.self), try $0("step_key", as: String.self)) }
                guard step != nil else { return }
            case .heard(let messageID, let attempt, let details):
                step = try await connection.query(
                    """
                    UPDATE step SET attempt = \(attempt), last_heard_at = \(now), heartbeat = coalesce(\(details?.text), heartbeat)
                    WHERE message_id = \(messageID) AND status IN ('scheduled', 'parked') RETURNING workflow_id, step_key
                    """, logger: self.logger
                ).first { (try $0("workflow_id", as: String.self), try $0("step_key", as: String.self)) }
                guard step != nil else { return }
            case .resumed:
                step = nil
            }
            let workflowID = if case .resumed(let id, _) = note { id } else { step!.workflowID }
            if let line = WorkflowProjection.line(for: note, stepKey: step?.stepKey) {
                try await self.project(connection, workflowID: workflowID, lines: [line], at: now)
            }
        }
    }

    public func step(messageID: String) async throws -> StepRecord? {
        try await read("read step \(messageID)") { connection in
            try await connection.query("SELECT \(unescaped: Self.stepColumns) FROM step WHERE message_id = \(messageID)", logger: self.logger).first { try $0.step }
        }
    }

    public func steps(workflowID: String) async throws -> [StepRecord] {
        try await read("read the steps of workflow \(workflowID)") { connection in
            try await connection.query(
                "SELECT \(unescaped: Self.stepColumns) FROM step WHERE workflow_id = \(workflowID) ORDER BY position, message_id", logger: self.logger
            ).all { try $0.step }
        }
    }

    public func dueTimers(until: Date, limit: Int) async throws -> [DueTimer] {
        try await read("read the due timers") { connection in
            try await connection.query(
                """
                SELECT timer.workflow_id, timer.position, timer.timer_key, timer.fire_at FROM timer JOIN workflow ON workflow.id = timer.workflow_id
                WHERE NOT timer.fired AND timer.fire_at <= \(until) AND workflow.status IN ('running', 'parked')
                ORDER BY timer.fire_at, timer.workflow_id, timer.position LIMIT \(Int64(max(0, limit)))
                """, logger: self.logger
            ).all { DueTimer(workflowID: try $0("workflow_id"), position: try $0.integer("position"), key: try $0("timer_key"), fireAt: try $0("fire_at")) }
        }
    }

    // MARK: Lists

    public func workflows(matching filter: WorkflowFilter, after cursor: WorkflowCursor?, limit: Int) async throws -> [WorkflowSummary] {
        var query = Self.condition(filter)
        if let cursor {
            let at = query.bind(cursor.startedAt)
            let id = query.bind(cursor.id)
            query.append("(started_at < \(at) OR (started_at = \(at) AND id > \(id)))")
        }
        let sql = "SELECT \(Self.summaryColumns) FROM workflow WHERE \(query.sql) ORDER BY started_at DESC, id LIMIT \(max(0, limit))"
        let statement = query.bound(sql)
        return try await read("list workflows") { connection in
            try await connection.query(statement, logger: self.logger).all { try $0.summary }
        }
    }

    public func countWorkflows(matching filter: WorkflowFilter) async throws -> Int {
        let query = Self.condition(filter)
        return try await read("count workflows") { connection in
            try await connection.query(query.bound("SELECT count(*) AS count FROM workflow WHERE \(query.sql)"), logger: self.logger)
                .first { Int(try $0("count", as: Int64.self)) } ?? 0
        }
    }

    public func history(workflowID: String, after: Int64?, limit: Int) async throws -> [SequencedHistoryEvent] {
        try await read("read the history of workflow \(workflowID)") { connection in
            try await connection.query(
                """
                SELECT id, at, kind, step_key, detail FROM history WHERE workflow_id = \(workflowID) AND id > \(after ?? 0)
                ORDER BY id LIMIT \(Int64(min(Int(Int64.max), max(0, limit))))
                """, logger: self.logger
            ).all { try $0.historyEvent }
        }
    }

    public func attributes(workflowID: String) async throws -> WorkflowAttributes {
        try await read("read the attributes of workflow \(workflowID)") { connection in
            var search: [String: SearchAttribute] = [:]
            for row in try await connection.query(
                "SELECT key, text_value, number_value FROM workflow_attribute WHERE workflow_id = \(workflowID)", logger: self.logger
            ).all({ $0 }) {
                let key: String = try row("key")
                switch (try row("text_value", as: String?.self), try row("number_value", as: Double?.self)) {
                case (let text?, _?): search[key] = .bool(text == "true")
                case (let text?, nil): search[key] = .text(text)
                case (nil, let number?): search[key] = .number(number)
                case (nil, nil): continue
                }
            }
            let memo = try await connection.query("SELECT memo FROM workflow WHERE id = \(workflowID)", logger: self.logger)
                .first { try $0("memo", as: String?.self) } ?? nil
            return WorkflowAttributes(search: search, memo: try memo.map(JSONText.init(storedText:)))
        }
    }

    /// A list filter in SQL, with its values bound in order (`$1`, `$2`…).
    private static func condition(_ filter: WorkflowFilter) -> FilterQuery {
        var query = FilterQuery()
        if !filter.statuses.isEmpty {
            let placeholders = filter.statuses.map(\.rawValue).sorted().map { query.bind($0) }
            query.append("status IN (\(placeholders.joined(separator: ", ")))")
        }
        if let name = filter.name {
            let value = query.bind(name)
            query.append("name = \(value)")
        }
        if let after = filter.startedAfter {
            let value = query.bind(after)
            query.append("started_at > \(value)")
        }
        if let before = filter.startedBefore {
            let value = query.bind(before)
            query.append("started_at < \(value)")
        }
        // strpos, not LIKE: the text is matched as it is, with no wildcard characters in it.
        if let text = filter.idContains, !text.isEmpty {
            let value = query.bind(text)
            query.append("strpos(id, \(value)) > 0")
        }
        if let prefix = filter.idPrefix, !prefix.isEmpty {
            let value = query.bind(prefix)
            query.append("left(id, char_length(\(value))) = \(value)")
        }
        for clause in filter.attributes {
            // Of the clause's kind only: a truth value is kept as both text and number.
            let (column, kind, value): (String, String, String) = switch clause.value {
            case .text(let text): ("text_value", "a.number_value IS NULL", query.bind(text))
            case .number(let number): ("number_value", "a.text_value IS NULL", query.bind(number))
            case .bool(let bool): ("text_value", "a.number_value IS NOT NULL", query.bind(String(bool)))
            }
            let key = query.bind(clause.key)
            let comparison = clause.comparison == .notEqual ? "=" : clause.comparison.rawValue
            let exists = "EXISTS (SELECT 1 FROM workflow_attribute a WHERE a.workflow_id = workflow.id AND a.key = \(key) AND \(kind) AND a.\(column) \(comparison) \(value))"
            query.append(clause.comparison == .notEqual ? "NOT " + exists : exists)
        }
        return query
    }
}

/// A `WHERE` clause put together from a filter's parts, and the values it binds.
struct FilterQuery {
    private var conditions: [String] = []
    private var bindings = PostgresBindings()
    private var count = 0

    var sql: String { conditions.isEmpty ? "true" : conditions.joined(separator: " AND ") }

    mutating func append(_ condition: String) { conditions.append(condition) }

    /// Binds `value` and returns its placeholder.
    mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        bindings.append(value)
        count += 1
        return "$\(count)"
    }

    /// The query `sql` with these values bound.
    func bound(_ sql: String) -> PostgresQuery {
        PostgresQuery(unsafeSQL: sql, binds: bindings)
    }
}
