import ArgumentParser
import FlowClient
import FlowCoordinator
import FlowCore
import FlowWorkflows
import Foundation
import Logging

/// Where `flow workflow list|show` read: the coordinator, over the broker, from any
/// machine that reaches it; or, with `--data-dir` or `--store`, its store directly, for
/// when no coordinator runs. Both give the same answers (``WorkflowQueryAnswers``).
struct WorkflowSource: ParsableArguments {
    @Option(help: "Read the workflow store in this coordinator data folder directly (holding workflows.sqlite), instead of asking the coordinator over the broker.")
    var dataDir: String?

    @Option(help: "Read this workflow store directly (postgres://… or sqlite:PATH), instead of asking the coordinator over the broker.")
    var store: String?

    @Option(help: .hidden)
    var topologyPrefix: String?

    @OptionGroup var connection: ConnectionOptions

    /// The three reads, wherever they come from.
    struct Reader: Sendable {
        var list: @Sendable (WorkflowQuery.List) async throws -> WorkflowPage
        var describe: @Sendable (WorkflowQuery.Describe) async throws -> WorkflowDescription
        var history: @Sendable (WorkflowQuery.History) async throws -> WorkflowHistoryPage
        var journal: @Sendable (WorkflowQuery.Journal) async throws -> WorkflowJournalPage
        /// A workflow's own query, answered by its code (`flow.workflow.query`).
        var ask: @Sendable (WorkflowQuery.Ask) async throws -> WorkflowQueryResult
    }

    func read<Result: Sendable>(_ body: @Sendable (Reader) async throws -> Result) async throws -> Result {
        do {
            if dataDir != nil || store != nil {
                let opened = try await CoordinatorStoreOptions(dataDir: dataDir, store: store).openForReading()
                let answers = WorkflowQueryAnswers(store: opened)
                // No coordinator: the workflow's code is replayed here, from its journal.
                let ask: @Sendable (WorkflowQuery.Ask) async throws -> WorkflowQueryResult = { ask in
                    let entries = try await opened.journal(workflowID: ask.workflowID)
                    guard case .workflowStarted(let workflow, _)? = entries.first?.event else { throw ValidationError("no workflow has id \(ask.workflowID)") }
                    let replayer = WorkflowReplayer(registry: ApplicationWorkflows.registry(), logger: Logger(label: "flow.workflow"))
                    let output = try await replayer.query(WorkflowHistory(workflowID: ask.workflowID, workflow: workflow, events: entries), name: ask.name)
                    return WorkflowQueryResult(workflowID: ask.workflowID, name: ask.name, output: output)
                }
                return try await body(Reader(list: answers.list, describe: answers.describe, history: answers.history, journal: answers.journal, ask: ask))
            }
            let logger = connection.logger(label: "flow.workflow")
            let amqp = try await connection.connect(as: "flow workflow", logger: logger)
            do {
                let result = try await CoordinatorClient.withClient(transport: amqp, names: topologyNames(topologyPrefix), logger: logger) { client in
                    try await body(
                        Reader(
                            list: { try await client.query(.list, $0, as: WorkflowPage.self) },
                            describe: { try await client.query(.describe, $0, as: WorkflowDescription.self) },
                            history: { try await client.query(.history, $0, as: WorkflowHistoryPage.self) },
                            journal: { try await client.query(.journal, $0, as: WorkflowJournalPage.self) },
                            ask: { try await client.query(.workflowState, $0, as: WorkflowQueryResult.self) }
                        )
                    )
                }
                await amqp.close()
                return result
            } catch {
                await amqp.close()
                throw error
            }
        } catch let failure as ActivityFailure {
            throw ValidationError(failure.message)
        } catch let refused as CoordinatorClient.Refused {
            throw ValidationError(refused.message)
        } catch let silent as CoordinatorClient.NoAnswer {
            throw ValidationError(silent.description)
        }
    }
}

extension WorkflowSource.Reader {
    /// A workflow's whole journal, read page by page, as a history the replayer reads.
    func wholeHistory(of workflowID: String) async throws -> WorkflowHistory {
        var events: [JournalEntry] = []
        var after: Int64?
        var workflow = ""
        repeat {
            let page = try await journal(WorkflowQuery.Journal(workflowID: workflowID, after: after, limit: WorkflowQuery.maximumPageSize))
            workflow = page.workflow
            events += try page.events.map { try $0.decode(JournalEntry.self) }
            after = page.nextAfter
        } while after != nil
        return WorkflowHistory(workflowID: workflowID, workflow: workflow, events: events)
    }
}
