import ArgumentParser
import FlowCore
import FlowDeadLetters
import Foundation

/// `flow workflow signal|pause|unpause|cancel|replay`: the commands that change a workflow
/// from outside, one by id or many by filter.
///
/// What those that act on many workflows at once share: the filter that
/// selects them (`--where`, docs/workflows.md "Search attributes"), a `--limit`, a
/// `--dry-run` that lists them and changes nothing, and the audit log, which gets a line
/// for each workflow acted on, with what came of it.
struct BulkOptions: ParsableArguments {
    @Option(name: .customLong("where"), help: ArgumentHelp(
        "Act on every workflow this filter keeps, instead of one id: clauses joined by AND, on status, name, started_at or search attributes.",
        discussion: #"--where 'status = parked AND document_format = "pdf"'"#
    ))
    var filter: String?

    @Option(help: "With --where, act on at most this many workflows, newest first.")
    var limit: Int = 100

    @Flag(help: "With --where, list the workflows it would act on, and change nothing.")
    var dryRun = false

    @Option(help: "Who runs this, for the audit log (default: $USER).")
    var operatorName: String?

    var who: String { operatorName ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown" }

    /// The audit log the dead-letter tools write too ($FLOW_AUDIT_LOG, then .flow/audit/dlq.jsonl).
    var auditLog: AuditLog {
        AuditLog(file: URL(fileURLWithPath: ProcessInfo.processInfo.environment["FLOW_AUDIT_LOG"] ?? ".flow/audit/dlq.jsonl"))
    }

    /// Exactly one of an id and `--where`.
    func check(id: String?) throws {
        switch (id, filter) {
        case (nil, nil): throw ValidationError("name a workflow id, or select workflows with --where")
        case (_?, _?): throw ValidationError("name a workflow id or use --where, not both")
        default: break
        }
        if let filter {
            do { _ = try WorkflowWhere.parse(filter) } catch let failure as ActivityFailure { throw ValidationError("--where: \(failure.message)") }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 10000") }
        }
    }

    /// The workflows the filter keeps (of `statuses` only, when given), newest first, at
    /// most `--limit`.
    func select(from source: WorkflowSource, statuses: [WorkflowStatus]? = nil) async throws -> [WorkflowSummary] {
        let filter = self.filter
        let limit = self.limit
        return try await source.read { reader in
            var selected: [WorkflowSummary] = []
            var page: String?
            repeat {
                let query = WorkflowQuery.List(statuses: statuses, limit: min(WorkflowQuery.maximumPageSize, limit - selected.count), page: page, where: filter)
                let listed = try await reader.list(query)
                selected += listed.workflows
                page = listed.nextPage
            } while page != nil && selected.count < limit
            return Array(selected.prefix(limit))
        }
    }

    /// Acts on each selected workflow in turn (`act` says what came of it, and whether it
    /// worked), printing a line and writing the audit log for each; with `--dry-run`, only
    /// lists them. Exits 1 when any action failed.
    func run(_ action: String, on workflows: [WorkflowSummary], _ act: (WorkflowSummary) async throws -> (ok: Bool, outcome: String)) async throws {
        if workflows.isEmpty {
            print("no workflow matches")
            return
        }
        if dryRun {
            for workflow in workflows { print("would \(action) \(workflow.id)  \(workflow.name)  \(workflow.status.rawValue)") }
            print("\(workflows.count) workflow\(workflows.count == 1 ? "" : "s") would be acted on; nothing changed (--dry-run)")
            return
        }
        var failed = 0
        for workflow in workflows {
            let (ok, outcome): (Bool, String)
            do { (ok, outcome) = try await act(workflow) } catch { (ok, outcome) = (false, "\(error)") }
            if !ok { failed += 1 }
            print("\(ok ? action : "could not \(action)") \(workflow.id): \(outcome)")
            try auditLog.record(action: "workflow \(action)", operatorName: who, workflowID: workflow.id, outcome: ok ? outcome : "failed: \(outcome)")
        }
        print("\(workflows.count - failed) of \(workflows.count) done")
        if failed > 0 { throw ExitCode(1) }
    }
}

extension WorkflowCommandLine {
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a workflow (a parked one too), or every workflow --where selects: its code is cancelled and may clean up, and the activities it waits on are asked to stop."
        )

        @Argument(help: "The workflow id (or select workflows with --where).")
        var id: String?

        @Option(help: "Why, for its history.")
        var reason: String?

        @Flag(help: "End it at once, with no cleanup by its code.")
        var terminate = false

        @OptionGroup var bulk: BulkOptions
        @OptionGroup var source: WorkflowSource

        func run() async throws {
            try bulk.check(id: id)
            let names = topologyNames(source.topologyPrefix)
            let reason = reason ?? (terminate ? "terminated with flow workflow cancel --terminate" : "cancelled with flow workflow cancel")
            let command = { (id: String) in WorkflowCommand.Cancel(workflowID: id, reason: reason, terminate: terminate ? true : nil) }
            if let id {
                try await sendCommand(.cancel, command(id), names: names, connection: source.connection)
                return
            }
            let selected = try await bulk.select(from: source, statuses: [.running, .parked])
            let client = try await CommandClient.open(connection: source.connection, names: names, as: "flow workflow cancel --where")
            do {
                try await bulk.run(terminate ? "terminate" : "cancel", on: selected) { workflow in
                    guard let answer = try await client.ask(.cancel, command(workflow.id)) else { return (false, "no answer within 30 s") }
                    return (answer.accepted, answer.message)
                }
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay the dead-lettered messages of a parked workflow, or of every parked workflow --where selects, so each continues.",
            discussion: "The same replay as `flow dlq replay --workflow ID`, with its replay limit; fix the cause first."
        )

        @Argument(help: "The workflow id (or select workflows with --where).")
        var id: String?

        @Option(help: "Refuse messages replayed this many times already (default: $FLOW_MAX_REPLAYS, then 5).")
        var maxReplays: Int?

        @OptionGroup var bulk: BulkOptions
        @OptionGroup var source: WorkflowSource

        func run() async throws {
            try bulk.check(id: id)
            let maximum = maxReplays ?? ProcessInfo.processInfo.environment["FLOW_MAX_REPLAYS"].flatMap(Int.init) ?? 5
            let selected = if let id {
                [WorkflowSummary(id: id, name: "-", status: .parked, cancelRequested: false, startedAt: Date(), updatedAt: Date())]
            } else {
                try await bulk.select(from: source, statuses: [.parked])
            }
            var options = bulk
            options.dryRun = bulk.dryRun && id == nil
            let logger = source.connection.logger(label: "flow.workflow")
            let amqp = try await source.connection.connect(as: "flow workflow replay", logger: logger)
            let dlq = DeadLetterQueue(transport: amqp, names: topologyNames(source.topologyPrefix), audit: bulk.auditLog)
            do {
                try await replay(selected, options: options, dlq: dlq, maximum: maximum)
            } catch {
                await amqp.close()
                throw error
            }
            await amqp.close()
        }

        private func replay(_ selected: [WorkflowSummary], options: BulkOptions, dlq: DeadLetterQueue, maximum: Int) async throws {
            try await options.run("replay", on: selected) { workflow in
                let report = try await dlq.replay(
                    DeadLetterFilter(workflowID: workflow.id), maximumReplays: maximum, force: false, dryRun: false, operatorName: bulk.who
                )
                let refused = report.refused.map { "\($0.0) refused: \($0.1)" }
                let ok = !report.replayed.isEmpty && report.refused.isEmpty
                let outcome = report.replayed.isEmpty && refused.isEmpty
                    ? "no message of it is in the dead-letter queue" : (["\(report.replayed.count) message(s) replayed"] + refused).joined(separator: "; ")
                return (ok, outcome)
            }
        }
    }
}

extension WorkflowCommandLine {
    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pause a workflow: it records and sends no new command until unpaused; steps already sent run on."
        )
        @Argument(help: "The workflow id.") var id: String
        @Option(help: "Why, for its history.") var reason: String?
        @Option(help: .hidden) var topologyPrefix: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await sendCommand(.pause, WorkflowCommand.Pause(workflowID: id, reason: reason ?? "paused with flow workflow pause"), names: topologyNames(topologyPrefix), connection: connection)
        }
    }

    struct Unpause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unpause a workflow: the commands its code issued meanwhile go out.")
        @Argument(help: "The workflow id.") var id: String
        @Option(help: .hidden) var topologyPrefix: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await sendCommand(.unpause, WorkflowCommand.Pause(workflowID: id), names: topologyNames(topologyPrefix), connection: connection)
        }
    }
}

extension WorkflowCommandLine {
    struct Signal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a signal to a workflow, or to every workflow --where selects: recorded in its journal, then received by its code once.",
            discussion: """
                flow workflow signal ID NAME --input JSON, or flow workflow signal NAME --where FILTER --input JSON. With --start, a workflow that does not \
                exist is started first (signal-with-start). --signal-id makes a signal sent twice count once (with --where, once per workflow).
                """
        )

        @Argument(help: "The workflow id and the signal's name (with --where, the name only).")
        var arguments: [String] = []

        @Option(help: "The input: JSON, or @FILE (default: {}).")
        var input: String?

        @Option(help: "Start this workflow with the id when none has it, then send to it.")
        var start: String?

        @Option(help: "The input of the workflow --start starts: JSON, or @FILE (default: {}).")
        var startInput: String?

        @Option(help: "An id that makes this signal count once however often it is sent (default: a new one).")
        var signalID: String?

        @OptionGroup var bulk: BulkOptions
        @OptionGroup var source: WorkflowSource

        func run() async throws {
            let names = topologyNames(source.topologyPrefix)
            let input = try self.input.map(readJSONInput)
            let signalID = signalID ?? UUID().uuidString.lowercased()
            guard bulk.filter != nil else {
                guard arguments.count == 2 else { throw ValidationError("give the workflow id and the signal's name (or the name and --where)") }
                let body = WorkflowCommand.Signal(
                    workflowID: arguments[0], name: arguments[1], input: input, signalID: signalID, startWorkflow: start, startInput: try startInput.map(readJSONInput)
                )
                try await sendCommand(.signal, body, names: names, connection: source.connection)
                return
            }
            try bulk.check(id: nil)
            guard arguments.count == 1 else { throw ValidationError("with --where, give only the signal's name") }
            guard start == nil else { throw ValidationError("--start starts one workflow; it does not go with --where") }
            let name = arguments[0]
            let selected = try await bulk.select(from: source, statuses: [.running, .parked])
            let client = try await CommandClient.open(connection: source.connection, names: names, as: "flow workflow signal --where")
            do {
                try await bulk.run("signal", on: selected) { workflow in
                    let body = WorkflowCommand.Signal(workflowID: workflow.id, name: name, input: input, signalID: "\(signalID):\(workflow.id)")
                    guard let answer = try await client.ask(.signal, body) else { return (false, "no answer within 30 s") }
                    return (answer.accepted, answer.message)
                }
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        }
    }
}
