import ArgumentParser
import FlowCore
import Foundation

extension WorkflowCommandLine {
    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reset a workflow, or every workflow --where selects, to a command: its journal is cut back to before command N into a new run, which runs N and what follows again.",
            discussion: """
                flow workflow show ID lists the commands by position. The run that is cut off is kept as ID@run-<n>; the steps it had open from N on \
                are asked to stop. Signals received after the cut are kept (after the rest) unless --drop-signals. A workflow that ended may be reset \
                too: that is how a workflow that failed for a cause now fixed runs again from the step that failed. docs/workflows.md, "Reset".
                """
        )

        @Argument(help: "The workflow id (or select workflows with --where).")
        var id: String?

        @Option(name: .customLong("to"), help: "The position of the first command to run again (0: from the start).")
        var position: Int

        @Flag(help: "Leave out the signals received after the cut.")
        var dropSignals = false

        @Option(help: "Why, for its history.")
        var reason: String?

        @OptionGroup var bulk: BulkOptions
        @OptionGroup var source: WorkflowSource

        func validate() throws {
            guard position >= 0 else { throw ValidationError("--to must be a command's position: 0 or more") }
        }

        func run() async throws {
            try bulk.check(id: id)
            let names = topologyNames(source.topologyPrefix)
            let reason = reason ?? "reset with flow workflow reset by \(bulk.who)"
            // One id per reset, so a command the broker delivers twice resets once.
            let command = { (id: String) in
                WorkflowCommand.Reset(workflowID: id, position: position, dropSignals: dropSignals ? true : nil, reason: reason, resetID: UUID().uuidString)
            }
            if let id {
                try await sendCommand(.reset, command(id), names: names, connection: source.connection)
                try bulk.auditLog.record(action: "workflow reset", operatorName: bulk.who, workflowID: id, outcome: "to command \(position)")
                return
            }
            // The runs a later run replaced are history; their workflow's current run is reset.
            let selected = try await bulk.select(from: source).filter { $0.runOf == nil }
            let client = try await CommandClient.open(connection: source.connection, names: names, as: "flow workflow reset --where")
            do {
                try await bulk.run("reset", on: selected) { workflow in
                    guard let answer = try await client.ask(.reset, command(workflow.id)) else { return (false, "no answer within 30 s") }
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
