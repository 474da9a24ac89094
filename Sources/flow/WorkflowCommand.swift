import ArgumentParser
import FlowAMQP
import FlowCoordinator
import FlowCore
import Foundation

/// `flow workflow start|list|show|cancel`.
struct WorkflowCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow",
        abstract: "Start, list, inspect and cancel workflows.",
        discussion: "start and cancel are commands to the coordinator over the broker; list and show read its store (--data-dir).",
        subcommands: [Start.self, List.self, Show.self, Cancel.self]
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
            case .failed, .cancelled, .running:
                FileHandle.standardError.write(Data("workflow \(result.workflowID) \(result.status.rawValue): \(result.error.map { "\($0)" } ?? "no details")\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List workflows, newest first.")

        @Option(name: .customLong("status"), help: "Only these statuses (running, parked, completed, failed, cancelled); repeat or separate with commas.")
        var statuses: [String] = []

        @Option(help: "At most this many.")
        var limit: Int = 50

        @OptionGroup var store: CoordinatorStoreOptions

        func run() async throws {
            var wanted = Set<WorkflowStatus>()
            for value in statuses.flatMap({ $0.split(separator: ",").map(String.init) }) {
                guard let status = WorkflowStatus(rawValue: value) else {
                    throw ValidationError("unknown status '\(value)': use \(WorkflowStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                wanted.insert(status)
            }
            let workflows = try await store.openForReading().workflows(status: wanted, limit: limit)
            if workflows.isEmpty {
                print("no workflows")
                return
            }
            let formatter = ISO8601DateFormatter()
            for workflow in workflows {
                var line = "\(workflow.id)  \(workflow.name)  \(workflow.status.rawValue)  started \(formatter.string(from: workflow.startedAt))"
                if let reason = workflow.parkedReason { line += "  (\(reason.prefix(120)))" }
                print(line)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a workflow: status, input, output, steps and its history as a timeline.")

        @Argument(help: "The workflow id.")
        var id: String

        @OptionGroup var store: CoordinatorStoreOptions

        func run() async throws {
            let store = try store.openForReading()
            guard let workflow = try await store.workflow(id: id) else {
                throw ValidationError("no workflow has id \(id) (`flow workflow list` shows them)")
            }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            print("workflow  \(workflow.id)")
            print("name      \(workflow.name)")
            print("status    \(workflow.status.rawValue)\(workflow.cancelRequested && !workflow.status.isFinished ? " (cancel requested)" : "")")
            if let reason = workflow.parkedReason { print("parked    \(reason)") }
            print("started   \(formatter.string(from: workflow.startedAt))")
            if let finished = workflow.finishedAt { print("finished  \(formatter.string(from: finished)) (\(String(format: "%.3f", finished.timeIntervalSince(workflow.startedAt))) s)") }
            print("input     \(workflow.input.text)")
            if let output = workflow.output { print("output    \(output.text)") }
            if let error = workflow.error { print("error     \(error)") }
            let steps = try await store.steps(workflowID: id)
            if !steps.isEmpty {
                print("\nsteps")
                for step in steps {
                    var line = "  \(step.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(step.activity) on \(step.queue), sent \(step.sends)x"
                    if step.attempt > 0 { line += ", attempt \(step.attempt)" }
                    if let error = step.error { line += ": \(error)" }
                    line += "  [\(step.messageID)]"
                    print(line)
                }
            }
            print("\nhistory")
            for event in try await store.history(workflowID: id) {
                let offset = String(format: "%+9.3f s", event.at.timeIntervalSince(workflow.startedAt))
                var line = "  \(offset)  \(event.kind.rawValue)"
                if let key = event.stepKey { line += "  \(key)" }
                if !event.detail.isEmpty { line += "  \(event.detail)" }
                print(line)
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a workflow (a parked one too). Steps already sent still run; their replies are ignored.")

        @Argument(help: "The workflow id.")
        var id: String

        @Option(help: "Why, for its history.")
        var reason: String?

        @Option(help: .hidden)
        var topologyPrefix: String?

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let names = topologyNames(topologyPrefix)
            try await sendCommand(.cancel, WorkflowCommand.Cancel(workflowID: id, reason: reason ?? "cancelled with flow workflow cancel"), names: names, connection: connection)
        }
    }
}

/// `flow schedule add|list|remove`.
struct ScheduleCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Run workflows on a schedule.",
        discussion: "A schedule's run missed while the coordinator was down runs once when it is back, not once per missed time.",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add (or replace) a schedule.")

        @Argument(help: "The schedule's name.")
        var name: String

        @Option(help: "An interval: 90s, 15m, 1h, 1d.")
        var every: String?

        @Option(help: "A cron expression of five fields, in UTC: \"0 3 * * *\".")
        var cron: String?

        @Option(help: "The workflow to start.")
        var workflow: String

        @Option(help: "The workflow's input: JSON text, or @FILE.")
        var input: String = "{}"

        @Option(help: .hidden)
        var topologyPrefix: String?

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let seconds = try every.map(Self.seconds)
            let command = WorkflowCommand.AddSchedule(name: name, workflow: workflow, input: try readJSONInput(input), everySeconds: seconds, cron: cron)
            try await sendCommand(.addSchedule, command, names: topologyNames(topologyPrefix), connection: connection)
        }

        static func seconds(_ text: String) throws -> Int64 {
            let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            guard let unit = text.last.flatMap({ units[$0] }), let count = Int64(text.dropLast()), count > 0 else {
                throw ValidationError("--every must be a number and a unit (s, m, h, d), like 15m; got '\(text)'")
            }
            return count * unit
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List schedules and their next run.")
        @OptionGroup var store: CoordinatorStoreOptions

        func run() async throws {
            let schedules = try await store.openForReading().schedules()
            if schedules.isEmpty { print("no schedules") }
            let formatter = ISO8601DateFormatter()
            for schedule in schedules {
                let when = schedule.cron.map { "cron \"\($0)\"" } ?? "every \(schedule.everySeconds ?? 0) s"
                print("\(schedule.name)  \(schedule.workflow)  \(when)  next \(formatter.string(from: schedule.nextRunAt))  runs \(schedule.runs)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a schedule.")
        @Argument(help: "The schedule's name.") var name: String
        @Option(help: .hidden) var topologyPrefix: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await sendCommand(.removeSchedule, WorkflowCommand.RemoveSchedule(name: name), names: topologyNames(topologyPrefix), connection: connection)
        }
    }
}
