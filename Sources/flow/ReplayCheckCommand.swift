import ArgumentParser
import FlowCoordinator
import FlowCore
import FlowWorkflows
import Foundation
import Logging

extension WorkflowCommandLine {
    /// `flow workflow replay-check`: does this build's workflow code replay recorded runs?
    struct ReplayCheck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay-check",
            abstract: "Check that this build's code of a workflow replays its recorded runs, before you deploy it.",
            discussion: """
                Runs the workflow code of this build against each run's journal, with nothing sent and nothing written, and prints one line per run. \
                Exit status 0 when every run replays, 1 when any diverges (a deploy would park it: each such run is named, with the position and \
                what differs), 2 when a history cannot be replayed here. Take the histories from the store (--from-store: the unfinished runs, or \
                all with --all), or from files that `flow workflow show ID --json` wrote (--history, repeatable).
                """
        )

        @Option(help: "The workflow whose runs to check.")
        var workflow: String

        @Flag(help: "Check the workflow's runs in the store: over the broker, or from the store file with --data-dir.")
        var fromStore = false

        @Flag(help: "With --from-store, check finished runs too, not only the running and parked ones.")
        var all = false

        @Option(help: "A history file written by `flow workflow show ID --json`. Repeat it for several.")
        var history: [String] = []

        @OptionGroup var source: WorkflowSource

        func validate() throws {
            guard fromStore != !history.isEmpty else {
                throw ValidationError("give either --from-store or --history FILE (one or more), not both and not neither")
            }
        }

        func run() async throws {
            let histories = try await fromStore ? historiesInStore() : historyFiles()
            let replayer = WorkflowReplayer(registry: ApplicationWorkflows.registry(), logger: Logger(label: "flow.workflow.replay-check"))
            let results = await replayer.replay(histories)
            for result in results { print(result) }
            let diverging = results.filter { if case .diverges = $0.verdict { true } else { false } }.count
            let unreadable = results.filter { if case .unreadable = $0.verdict { true } else { false } }.count
            print("\(results.count - diverging - unreadable) of \(results.count) runs of \(workflow) replay; \(diverging) diverge, \(unreadable) cannot be replayed")
            if diverging > 0 { throw ExitCode(1) }
            if unreadable > 0 { throw ExitCode(2) }
        }

        private func historyFiles() throws -> [WorkflowHistory] {
            try history.map { path in
                let history: WorkflowHistory
                do {
                    history = try WorkflowHistory(contentsOf: URL(fileURLWithPath: path))
                } catch {
                    throw ValidationError("\(error)")
                }
                guard history.workflow == workflow else {
                    throw ValidationError("\(path) is a run of \(history.workflow), not of \(workflow)")
                }
                return history
            }
        }

        private func historiesInStore() async throws -> [WorkflowHistory] {
            let name = workflow
            let statuses: [WorkflowStatus]? = all ? nil : [.running, .parked]
            return try await source.read { reader in
                var histories: [WorkflowHistory] = []
                var page: String?
                repeat {
                    let listed = try await reader.list(WorkflowQuery.List(statuses: statuses, name: name, limit: WorkflowQuery.maximumPageSize, page: page))
                    for summary in listed.workflows { histories.append(try await reader.wholeHistory(of: summary.id)) }
                    page = listed.nextPage
                } while page != nil
                return histories
            }
        }
    }
}
