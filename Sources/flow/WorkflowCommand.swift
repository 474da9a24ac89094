import ArgumentParser
import FlowAMQP
import FlowClient
import FlowCoordinator
import FlowCore
import Foundation

/// `flow workflow start|list|show|cancel`.
struct WorkflowCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow",
        abstract: "Start, list, inspect and cancel workflows.",
        discussion: "Every subcommand talks to the coordinator over the broker; list and show read its store directly instead when given --data-dir (for when no coordinator runs).",
        subcommands: [Start.self, List.self, Show.self, Query.self, Signal.self, Update.self, Pause.self, Unpause.self, Cancel.self, Reset.self, Activity.self, Replay.self, ReplayCheck.self]
    )

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a workflow; with --wait, print its result (exit status 0 completed, 1 failed or cancelled, 3 parked, 4 no answer in time)."
        )

        @Argument(help: "The workflow's name, e.g. document_onboarding.")
        var name: String

        @Option(help: "The input: JSON text, or @FILE.")
        var input: String = "{}"

        @Option(help: "The workflow id; starting an id already used runs nothing and answers with that workflow's result. A new id by default.")
        var id: String?

        @Flag(help: "Wait for the result (or for the workflow to park on a dead-lettered step).")
        var wait = false

        @Option(help: "Seconds to wait with --wait.")
        var timeout: Int = 600

        @Option(help: .hidden)
        var topologyPrefix: String?

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let input = try readJSONInput(input)
            let workflowID = id ?? "\(name)-\(UUID().uuidString.prefix(8).lowercased())"
            let names = topologyNames(topologyPrefix)
            let client = try await CommandClient.open(connection: connection, names: names, as: "flow workflow start")
            let result: WorkflowResult?
            do {
                try await client.send(.start, WorkflowCommand.Start(workflow: name, workflowID: workflowID, input: input), correlationID: workflowID)
                guard wait else {
                    print(workflowID)
                    await client.close()
                    return
                }
                FileHandle.standardError.write(Data("started \(name) as \(workflowID); waiting for its result\n".utf8))
                result = try await client.awaitAnswer(timeout: .seconds(timeout)) { delivery -> WorkflowResult? in
                    try? FlowJSON.decode(WorkflowResult.self, from: delivery.body)
                }
            } catch {
                await client.close()
                throw error
            }
            await client.close()
            guard let result else {
                FileHandle.standardError.write(Data("no result within \(timeout) s: is `flow coordinator` running? `flow workflow show \(workflowID)` tells where it stands\n".utf8))
                throw ExitCode(4)
            }
            try report(result)
        }

        private func report(_ result: WorkflowResult) throws {
            switch result.status {
            case .completed:
                print(result.output?.text ?? "null")
            case .parked:
                FileHandle.standardError.write(Data("workflow \(result.workflowID) is parked: \(result.error?.message ?? "a step was dead-lettered")\n".utf8))
                throw ExitCode(3)
            case .failed, .cancelled, .running, .continuedAsNew, .reset:
                FileHandle.standardError.write(Data("workflow \(result.workflowID) \(result.status.rawValue): \(result.error.map { "\($0)" } ?? "no details")\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List workflows, newest first, a page at a time.")

        @Option(name: .customLong("status"), help: "Only these statuses (running, parked, completed, failed, cancelled, continued_as_new, reset); repeat or separate with commas.")
        var statuses: [String] = []

        @Option(help: "Only workflows of this name.")
        var name: String?

        @Option(help: "Only ids containing this text.")
        var idContains: String?

        @Option(help: "Only workflows started after this time (ISO 8601, e.g. 2026-12-02T10:00:00Z).")
        var startedAfter: String?

        @Option(help: "Only workflows started before this time (ISO 8601).")
        var startedBefore: String?

        @Option(name: .customLong("where"), help: ArgumentHelp(
            "Only workflows this filter keeps: clauses joined by AND, on status, name, started_at or the workflow's search attributes.",
            discussion: #"--where 'status = parked AND document_format = "pdf" AND pages >= 10'"#
        ))
        var filter: String?

        @Option(help: "At most this many (at most 500).")
        var limit: Int = 50

        @Option(help: "The page token the previous page printed.")
        var page: String?

        @OptionGroup var source: WorkflowSource

        func run() async throws {
            var wanted: [WorkflowStatus] = []
            for value in statuses.flatMap({ $0.split(separator: ",").map(String.init) }) {
                guard let status = WorkflowStatus(rawValue: value) else {
                    throw ValidationError("unknown status '\(value)': use \(WorkflowStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                wanted.append(status)
            }
            func time(_ text: String?, _ option: String) throws -> Date? {
                guard let text else { return nil }
                guard let date = JSONDates.date(text) else { throw ValidationError("--\(option) '\(text)' is not an ISO 8601 time such as 2026-12-02T10:00:00Z") }
                return date
            }
            if let filter {
                do { _ = try WorkflowWhere.parse(filter) } catch let failure as ActivityFailure { throw ValidationError("--where: \(failure.message)") }
            }
            let query = WorkflowQuery.List(
                statuses: wanted.isEmpty ? nil : wanted, name: name, startedAfter: try time(startedAfter, "started-after"),
                startedBefore: try time(startedBefore, "started-before"), idContains: idContains, limit: limit, page: page, where: filter
            )
            let listed = try await source.read { reader in try await reader.list(query) }
            if listed.workflows.isEmpty {
                print("no workflows")
                return
            }
            for workflow in listed.workflows {
                var line = "\(workflow.id)  \(workflow.name)  \(workflow.status.rawValue)  started \(JSONDates.text(workflow.startedAt))"
                if let reason = workflow.parkedReason { line += "  (\(reason.prefix(120)))" }
                print(line)
            }
            print("\(listed.workflows.count) of \(listed.total)" + (listed.nextPage.map { "; next page: --page \($0)" } ?? ""))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a workflow: status, input, output, steps and its history as a timeline.")

        @Argument(help: "The workflow id.")
        var id: String

        @Flag(help: "Write the workflow's journal as JSON instead: a history that `flow workflow replay-check --history` and WorkflowReplayer read.")
        var json = false

        @OptionGroup var source: WorkflowSource

        func run() async throws {
            let id = self.id
            if json {
                let history = try await source.read { reader in try await reader.wholeHistory(of: id) }
                print(try FlowJSON.encodeText(history, pretty: true))
                return
            }
            let (described, history) = try await source.read { reader in
                let described = try await reader.describe(WorkflowQuery.Describe(workflowID: id))
                var events: [WorkflowHistoryEvent] = []
                var after: Int64?
                repeat {
                    let page = try await reader.history(WorkflowQuery.History(workflowID: id, after: after, limit: WorkflowQuery.maximumPageSize))
                    events += page.events
                    after = page.nextAfter
                } while after != nil
                return (described, events)
            }
            let workflow = described.workflow
            print("workflow  \(workflow.id)")
            print("name      \(workflow.name)")
            print("status    \(workflow.status.rawValue)\(workflow.cancelRequested && !workflow.status.isFinished ? " (cancel requested)" : "")")
            if let reason = workflow.parkedReason { print("parked    \(reason)") }
            if let reason = described.pausedBecause { print("paused    \(reason) (flow workflow unpause \(workflow.id))") }
            if let parent = described.parent { print("parent    \(parent.workflowID) (its command at position \(parent.position))") }
            if let runs = described.runs {
                print("run       \(described.run ?? 1) of \(runs.count): " + runs.map { "\($0.id) \($0.status.rawValue)" }.joined(separator: ", "))
            }
            if let search = described.searchAttributes {
                print("search    " + search.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: ", "))
            }
            if let memo = described.memo { print("memo      \(memo.text)") }
            print("started   \(JSONDates.text(workflow.startedAt))")
            // Offsets in whole milliseconds, the precision of the wire, so the broker and the
            // store give the same text.
            func seconds(from start: Date, to end: Date) -> Double {
                ((end.timeIntervalSince1970 * 1000).rounded() - (start.timeIntervalSince1970 * 1000).rounded()) / 1000
            }
            if let finished = workflow.finishedAt { print("finished  \(JSONDates.text(finished)) (\(String(format: "%.3f", seconds(from: workflow.startedAt, to: finished))) s)") }
            print("input     \(described.input.text)")
            if let output = described.output { print("output    \(output.text)") }
            if let error = described.error { print("error     \(error)") }
            if !described.steps.isEmpty {
                print("\nsteps")
                for step in described.steps {
                    var line = "  \(step.status.padding(toLength: 9, withPad: " ", startingAt: 0)) \(step.activity) on \(step.queue), sent \(step.sends)x"
                    if step.attempt > 0 { line += ", attempt \(step.attempt)" }
                    if let error = step.error { line += ": \(error)" }
                    line += "  [\(step.messageID)]"
                    print(line)
                }
            }
            if let commands = described.commands, !commands.isEmpty {
                // The positions `flow workflow reset --to` names.
                print("\ncommands")
                for command in commands {
                    print("  \(String(command.position).padding(toLength: 4, withPad: " ", startingAt: 0)) \(command.kind.padding(toLength: 9, withPad: " ", startingAt: 0)) \(command.name)  \(command.status)")
                }
            }
            if let children = described.children {
                print("\nchildren")
                for child in children {
                    print("  \(child.status.padding(toLength: 9, withPad: " ", startingAt: 0)) \(child.workflowID)  \(child.workflow), position \(child.position), when this ends first: \(child.parentClosePolicy)")
                }
            }
            print("\nhistory")
            for event in history {
                let offset = String(format: "%+9.3f s", seconds(from: workflow.startedAt, to: event.at))
                var line = "  \(offset)  \(event.kind)"
                if let key = event.stepKey { line += "  \(key)" }
                if !event.detail.isEmpty { line += "  \(event.detail)" }
                print(line)
            }
        }
    }

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a workflow a question its code answers from its state, and print the answer as JSON.",
            discussion: "A running workflow answers as it stands; an ended one is replayed from its journal first. Nothing is recorded."
        )

        @Argument(help: "The workflow id.")
        var id: String

        @Argument(help: "The query's name, as the workflow declares it (QueryDeclaration.name).")
        var name: String

        @OptionGroup var source: WorkflowSource

        func run() async throws {
            let answer = try await source.read { reader in try await reader.ask(WorkflowQuery.Ask(workflowID: id, name: name)) }
            print(answer.output.text)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a running workflow for an update and print its result as JSON.",
            discussion: "The workflow's validator may reject it (nothing is recorded; exit 1). --update-id makes an update sent twice apply once. With --start, a workflow that does not exist is started first (update-with-start)."
        )

        @OptionGroup var message: MessageToWorkflowOptions

        @Option(help: "An id that makes this update apply once however often it is sent (default: a new one).")
        var updateID: String?

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let name = message.name
            let body = WorkflowCommand.Update(
                workflowID: message.id, name: name, input: try message.input.map(readJSONInput), updateID: updateID ?? UUID().uuidString.lowercased(),
                startWorkflow: message.start, startInput: try message.startInput.map(readJSONInput)
            )
            let topologyPrefix = message.topologyPrefix
            let logger = connection.logger(label: "flow.workflow")
            let amqp = try await connection.connect(as: "flow workflow update", logger: logger)
            let answer: WorkflowUpdateResult
            do {
                answer = try await CoordinatorClient.withClient(transport: amqp, names: topologyNames(topologyPrefix), logger: logger) { client in try await client.update(body) }
                await amqp.close()
            } catch {
                await amqp.close()
                if let refused = error as? CoordinatorClient.Refused { throw ValidationError(refused.message) }
                throw error
            }
            guard answer.accepted else {
                print(answer.error?.message ?? "update \(name) was not applied")
                throw ExitCode(1)
            }
            if let error = answer.error {
                print("update \(name) failed: \(error)")
                throw ExitCode(1)
            }
            print(answer.output?.text ?? "null")
        }
    }
}

/// What `flow workflow signal` and `flow workflow update` both take: the workflow, the
/// message's name and input, and the workflow to start when none has the id.
struct MessageToWorkflowOptions: ParsableArguments {
    @Argument(help: "The workflow id.")
    var id: String

    @Argument(help: "The signal's or update's name, as the workflow declares it.")
    var name: String

    @Option(help: "The input: JSON, or @FILE (default: {}).")
    var input: String?

    @Option(help: "Start this workflow with the id when none has it, then send to it.")
    var start: String?

    @Option(help: "The input of the workflow --start starts: JSON, or @FILE (default: {}).")
    var startInput: String?

    @Option(help: .hidden)
    var topologyPrefix: String?
}
