import FlowCore
import FlowRuntime
import Foundation
import GRDB

/// The store's answers to the coordinator's read-only queries: filtered, paged lists that
/// read one page, never a whole table.
extension SQLiteWorkflowStore {
    public func workflows(matching filter: WorkflowFilter, after cursor: WorkflowCursor?, limit: Int) async throws -> [WorkflowSummary] {
        try await database.read { db in
            var request = Self.request(filter, of: WorkflowSummaryRow.self)
            if let cursor {
                let startedAt = Column("started_at"), id = Column("id")
                let seconds = cursor.startedAt.timeIntervalSince1970
                request = request.filter(startedAt < seconds || (startedAt == seconds && id > cursor.id))
            }
            return try request.order(Column("started_at").desc, Column("id")).limit(max(0, limit)).fetchAll(db).map(\.summary)
        }
    }

    public func countWorkflows(matching filter: WorkflowFilter) async throws -> Int {
        try await database.read { db in try Self.request(filter, of: WorkflowSummaryRow.self).fetchCount(db) }
    }

    public func history(workflowID: String, after: Int64?, limit: Int) async throws -> [SequencedHistoryEvent] {
        try await database.read { db in
            var request = HistoryRow.filter(Column("workflow_id") == workflowID)
            if let after { request = request.filter(Column("id") > after) }
            return try request.order(Column("id")).limit(max(0, limit)).fetchAll(db).map { row in
                SequencedHistoryEvent(sequence: row.id ?? 0, event: row.event, kindName: row.kind)
            }
        }
    }

    private static func request<Row: TableRecord>(_ filter: WorkflowFilter, of row: Row.Type) -> QueryInterfaceRequest<Row> {
        var request = Row.all()
        if !filter.statuses.isEmpty { request = request.filter(filter.statuses.map(\.rawValue).contains(Column("status"))) }
        if let name = filter.name { request = request.filter(Column("name") == name) }
        if let after = filter.startedAfter { request = request.filter(Column("started_at") > after.timeIntervalSince1970) }
        if let before = filter.startedBefore { request = request.filter(Column("started_at") < before.timeIntervalSince1970) }
        // instr, not LIKE: the text is matched as it is, with no wildcard characters in it.
        if let text = filter.idContains, !text.isEmpty { request = request.filter(sql: "instr(id, ?) > 0", arguments: [text]) }
        if let prefix = filter.idPrefix, !prefix.isEmpty { request = request.filter(sql: "substr(id, 1, ?) = ?", arguments: [prefix.count, prefix]) }
        for clause in filter.attributes { request = request.filter(sql: attributeCondition(clause), arguments: attributeArguments(clause)) }
        return request
    }

    /// A search-attribute clause in SQL: the workflow has the key with a value of the
    /// clause's kind that compares as asked; `!=` holds when it has no such equal value.
    private static func attributeCondition(_ clause: WorkflowWhere.Clause) -> String {
        // Of the clause's kind only: a truth value is kept as both text and number.
        let (column, kind) = switch clause.value {
        case .text: ("text_value", "a.number_value IS NULL")
        case .number: ("number_value", "a.text_value IS NULL")
        case .bool: ("text_value", "a.number_value IS NOT NULL")
        }
        let exists = "EXISTS (SELECT 1 FROM workflow_attribute a WHERE a.workflow_id = workflow.id AND a.key = ? AND \(kind) AND a.\(column) %@ ?)"
        return clause.comparison == .notEqual ? "NOT " + exists.replacingOccurrences(of: "%@", with: "=") : exists.replacingOccurrences(of: "%@", with: clause.comparison.rawValue)
    }

    private static func attributeArguments(_ clause: WorkflowWhere.Clause) -> StatementArguments {
        switch clause.value {
        case .text(let text): [clause.key, text]
        case .number(let number): [clause.key, number]
        case .bool(let bool): [clause.key, String(bool)]
        }
    }

    public func attributes(workflowID: String) async throws -> WorkflowAttributes {
        try await database.read { db in
            var search: [String: SearchAttribute] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, text_value, number_value FROM workflow_attribute WHERE workflow_id = ?", arguments: [workflowID]) {
                let key: String = row[0]
                switch (row[1] as String?, row[2] as Double?) {
                case (let text?, _?): search[key] = .bool(text == "true")
                case (let text?, nil): search[key] = .text(text)
                case (nil, let number?): search[key] = .number(number)
                case (nil, nil): continue
                }
            }
            let memo = try String.fetchOne(db, sql: "SELECT memo FROM workflow WHERE id = ?", arguments: [workflowID]).map(JSONText.init(storedText:))
            return WorkflowAttributes(search: search, memo: memo)
        }
    }
}

/// The columns of a workflow a list shows: not its input and output, which would be read
/// and parsed for every row of every page.
struct WorkflowSummaryRow: SnakeCaseColumns {
    static let databaseTableName = "workflow"
    static var databaseSelection: [any SQLSelectable] {
        [
            Column("id"), Column("name"), Column("status"), Column("parked_reason"), Column("cancel_requested"),
            Column("started_at"), Column("updated_at"), Column("finished_at"), Column("chain"),
        ]
    }
    var id: String
    var name: String
    var status: WorkflowStatus
    var parkedReason: String?
    var cancelRequested: Bool
    var startedAt: Date
    var updatedAt: Date
    var finishedAt: Date?
    var chain: String?

    var summary: WorkflowSummary {
        WorkflowSummary(
            id: id, name: name, status: status, parkedReason: parkedReason, cancelRequested: cancelRequested,
            startedAt: startedAt, updatedAt: updatedAt, finishedAt: finishedAt, runOf: chain == id ? nil : chain
        )
    }
}
