import FlowCoordinator
import FlowCore
import Foundation
import Logging
import PostgresNIO

/// The coordinator's store on a PostgreSQL server, for users who already run one and for
/// coordinators that share a store. It keeps every promise of ``WorkflowStore`` the SQLite
/// store keeps; one conformance suite checks all stores alike.
///
/// Each method is one transaction. One that writes to a workflow first locks the
/// workflow's row (`FOR UPDATE`) and checks the fence there: the journal's last sequence
/// number and the epoch that wrote it. Two writers of one workflow therefore take turns,
/// and the second finds the first's events and is refused, whichever connection it used.
public final class PostgresWorkflowStore: WorkflowStore {
    public let location: PostgresStoreLocation
    let logger: Logger
    private let running: RunningClient
    var client: PostgresClient { running.client }

    private init(location: PostgresStoreLocation, running: RunningClient, logger: Logger) {
        self.location = location
        self.running = running
        self.logger = logger
    }

    /// Connects to the store at `location` and migrates it to this build's schema.
    /// ``close()`` ends its connections.
    public static func open(_ location: PostgresStoreLocation, maximumConnections: Int = 8, logger: Logger) async throws -> PostgresWorkflowStore {
        let store = PostgresWorkflowStore(location: location, running: RunningClient(location, maximumConnections: maximumConnections, logger: logger), logger: logger)
        do {
            try await RunningClient.check(location, logger: logger)
            try await migrate(store.client, logger: logger)
        } catch {
            await store.close()
            throw WorkflowStoreError(
                .unavailable,
                "cannot open the workflow store at \(location): \(Self.describe(error)). Check that the server runs, that the database exists and that the user may create tables in it"
            )
        }
        return store
    }

    /// Opens the store at a `postgres://` URL.
    public static func open(url: String, logger: Logger) async throws -> PostgresWorkflowStore {
        try await open(try PostgresStoreLocation(url: url), logger: logger)
    }

    /// Closes the store's connections; calls made after it fail.
    public func close() async {
        await running.close()
    }

    // MARK: Workflows

    public func create(_ start: WorkflowStart, epoch: Int64, at now: Date) async throws -> WorkflowStartOutcome {
        let traceText = start.traceContext.isEmpty ? nil : try FlowJSON.encodeText(start.traceContext)
        let event = WorkflowEvent.workflowStarted(name: start.name, input: start.input)
        let payload = try event.payloadText()
        return try await transaction("start workflow \(start.id)") { connection in
            if let recipient = start.recipient {
                try await connection.query(
                    """
                    INSERT INTO result_recipient (workflow_id, reply_to, correlation_id)
                    VALUES (\(start.id), \(recipient.replyTo), \(recipient.correlationID)) ON CONFLICT DO NOTHING
                    """, logger: self.logger)
            }
            let created = try await connection.query(
                """
                INSERT INTO workflow (id, name, status, input, started_at, updated_at, trace_context, epoch, last_sequence, parent_id, parent_position, partition)
                VALUES (\(start.id), \(start.name), 'running', \(start.input.text), \(now), \(now), \(traceText), \(epoch), 1, \(start.parent?.workflowID), \(start.parent?.position),
                    \(unescaped: Self.partitionExpression("$1")))  -- $1: the id, the first value bound
                ON CONFLICT (id) DO NOTHING RETURNING \(unescaped: Self.workflowColumns), partition
                """, logger: self.logger
            ).first { (try $0.workflow, try $0.integer("partition")) }
            guard let (created, partition) = created else {
                guard let existing = try await connection.query(
                    "SELECT \(unescaped: Self.workflowColumns) FROM workflow WHERE id = \(start.id)", logger: self.logger
                ).first({ try $0.workflow }) else {
                    throw WorkflowStoreError(.unavailable, "workflow \(start.id) was neither created nor found: it was removed while it started")
                }
                return .existing(existing)
            }
            try await connection.query(
                """
                INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload)
                VALUES (\(start.id), 1, \(epoch), \(event.kind), NULL, \(now), \(payload))
                """, logger: self.logger)
            try await self.project(connection, workflowID: start.id, lines: WorkflowProjection.lines(for: event, stepKey: nil), at: now)
            try await self.checkLease(connection, partition: partition, workflowID: start.id, epoch: epoch)
            return .created(created)
        }
    }

    public func workflow(id: String) async throws -> WorkflowRecord? {
        try await read("read workflow \(id)") { connection in
            try await connection.query("SELECT \(unescaped: Self.workflowColumns) FROM workflow WHERE id = \(id)", logger: self.logger).first { try $0.workflow }
        }
    }

    public func unfinishedWorkflows() async throws -> [WorkflowRecord] {
        try await read("read the unfinished workflows") { connection in
            try await connection.query(
                "SELECT \(unescaped: Self.workflowColumns) FROM workflow WHERE status IN ('running', 'parked') ORDER BY started_at, id", logger: self.logger
            ).all { try $0.workflow }
        }
    }

    // MARK: Results

    public func recipients(workflowID: String) async throws -> [ResultRecipient] {
        try await read("read the result recipients of workflow \(workflowID)") { connection in
            try await connection.query(
                "SELECT reply_to, correlation_id FROM result_recipient WHERE workflow_id = \(workflowID) ORDER BY reply_to, correlation_id", logger: self.logger
            ).all { ResultRecipient(replyTo: try $0("reply_to"), correlationID: try $0("correlation_id")) }
        }
    }

    public func finishedWithRecipients() async throws -> [WorkflowRecord] {
        try await read("read the finished workflows whose result is unsent") { connection in
            try await connection.query(
                """
                SELECT \(unescaped: Self.workflowColumns) FROM workflow
                WHERE status IN ('completed', 'failed', 'cancelled') AND id IN (SELECT workflow_id FROM result_recipient)
                ORDER BY started_at, id
                """, logger: self.logger
            ).all { try $0.workflow }
        }
    }

    public func removeRecipient(workflowID: String, _ recipient: ResultRecipient) async throws {
        try await transaction("remove a result recipient of workflow \(workflowID)") { connection in
            try await connection.query(
                """
                DELETE FROM result_recipient
                WHERE workflow_id = \(workflowID) AND reply_to = \(recipient.replyTo) AND correlation_id = \(recipient.correlationID)
                """, logger: self.logger)
        }
    }

    // MARK: Helpers for the extensions

    /// Adds history lines, in the caller's transaction.
    func project(_ connection: PostgresConnection, workflowID: String, lines: [WorkflowProjection.Line], at: Date) async throws {
        for line in lines {
            try await connection.query(
                "INSERT INTO history (workflow_id, at, kind, step_key, detail) VALUES (\(workflowID), \(at), \(line.kind.rawValue), \(line.stepKey), \(line.detail))",
                logger: logger)
        }
    }

    /// How long one transaction or read may take before it is given up as unavailable. A
    /// call caught on a connection the server ended was seen never to return (`answer(by:)`).
    /// Every statement here takes milliseconds, but on a starved machine (the whole test
    /// suite on two cores, dozens of databases being made) calls were seen to pass 30 s:
    /// the limit is for calls that will never answer, not for slow ones.
    static let operationLimit = Duration.seconds(120)

    /// Runs `body` in one transaction; a failure names what was being done. A deadlock or
    /// serialization failure, which the server resolves by failing one side, runs it again.
    /// `limit`: how long it may take (nil: as long as it needs, for `flow store migrate`).
    func transaction<Result: Sendable>(
        _ action: @autoclosure () -> String, limit: Duration? = operationLimit, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        var attempt = 1
        while true {
            do {
                let (client, logger) = (self.client, self.logger)
                guard let limit else { return try await client.withTransaction(logger: logger) { connection in try await body(connection) } }
                guard let result = try await answer(by: .now + limit, { try await client.withTransaction(logger: logger) { connection in try await body(connection) } }) else {
                    throw WorkflowStoreError(.unavailable, "cannot \(action()) in the workflow store at \(location): no answer within \(limit)")
                }
                return result
            } catch let error as PostgresTransactionError {
                if let storeError = error.closureError as? WorkflowStoreError { throw storeError }
                if attempt < 5, Self.isTransient(error) {
                    attempt += 1
                    continue
                }
                throw WorkflowStoreError(.unavailable, "cannot \(action()) in the workflow store at \(location): \(Self.describe(error))")
            } catch let error as WorkflowStoreError {
                throw error
            } catch {
                throw WorkflowStoreError(.unavailable, "cannot \(action()) in the workflow store at \(location): \(Self.describe(error))")
            }
        }
    }

    /// Runs reads on one connection, outside an explicit transaction.
    func read<Result: Sendable>(_ action: @autoclosure () -> String, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        do {
            let client = self.client
            guard let result = try await answer(by: .now + Self.operationLimit, { try await client.withConnection { connection in try await body(connection) } }) else {
                throw WorkflowStoreError(.unavailable, "cannot \(action()) in the workflow store at \(location): no answer within \(Self.operationLimit)")
            }
            return result
        } catch let error as WorkflowStoreError {
            throw error
        } catch {
            throw WorkflowStoreError(.unavailable, "cannot \(action()) in the workflow store at \(location): \(Self.describe(error))")
        }
    }

    /// Whether the server failed the transaction only to break a deadlock or a
    /// serialization conflict, so that running it again is right.
    private static func isTransient(_ error: PostgresTransactionError) -> Bool {
        let failure = error.closureError ?? error.commitError
        guard let state = (failure as? PSQLError)?.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// What went wrong, in the server's words where it sent some. PSQLError's own
    /// description hides them (it may carry a query's values).
    static func describe(_ error: any Error) -> String {
        if let transactionError = error as? PostgresTransactionError {
            return describe(transactionError.closureError ?? transactionError.beginError ?? transactionError.commitError ?? transactionError.rollbackError ?? error)
        }
        if let error = error as? WorkflowStoreError { return error.message }
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            let code = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return "the server said: \(message)\(code)"
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }
}
