import FlowCore
import Foundation
import Logging

/// Runs workflow code against recorded histories, with no broker and no store, and says
/// whether each replays: whether today's code issues the same commands at the same
/// positions as the code that recorded them. Check every open run before deploying
/// changed workflow code (`flow workflow replay-check`), and keep histories of tricky runs
/// as test fixtures.
///
/// It is the coordinator's own replay: the same executor, the same order of outcomes, the
/// same comparison. Beyond it, a history that records the workflow's end must end the same
/// way (completed, failed or cancelled) when the code runs.
public struct WorkflowReplayer: Sendable {
    private let registry: WorkflowRegistry
    private let clock: any WallClock
    private let logger: Logger

    /// `clock` gives the values of markers a history does not have yet (`context.now`
    /// after its last recorded command).
    public init(registry: WorkflowRegistry, clock: any WallClock = SystemWallClock(), logger: Logger) {
        self.registry = registry
        self.clock = clock
        self.logger = logger
    }

    /// Replays one history through the registered code of its workflow.
    public func replay(_ history: WorkflowHistory) async -> ReplayResult {
        func result(_ verdict: ReplayResult.Verdict, commands: Int = 0) -> ReplayResult {
            ReplayResult(workflowID: history.workflowID, workflow: history.workflow, verdict: verdict, commands: commands)
        }
        guard let entry = registry.entry(named: history.workflow) else {
            return result(.unreadable("no workflow named '\(history.workflow)' is registered here (registered: \(registry.names.joined(separator: ", ")))"))
        }
        let journal: WorkflowJournal
        do {
            journal = try WorkflowJournal(history.events)
        } catch {
            return result(.unreadable("\(error)"))
        }
        guard let started = journal.started, let startedAt = journal.entries.first?.recordedAt else {
            return result(.unreadable("the history has no events"))
        }
        let (verdict, issued) = await replaying(journal, of: history, entry: entry, input: started.input, startedAt: startedAt) { run in
            (Self.verdict(run, journal: journal), run.issuedCount)
        }
        return result(verdict, commands: min(issued, journal.commands.count))
    }

    /// Runs the code of `entry` against `journal` on a run of its own, hands the run to
    /// `inspect` once the journal is applied, then stops the run and lets its tasks end.
    private func replaying<Value: Sendable>(
        _ journal: WorkflowJournal, of history: WorkflowHistory, entry: WorkflowRegistry.Entry, input: JSONText, startedAt: Date,
        inspect: (WorkflowRun) -> Value
    ) async -> Value {
        let run = WorkflowRun(workflowID: history.workflowID, workflowName: history.workflow, recorded: journal.commands) {}
        let context = WorkflowContext(run: run, startedAt: startedAt, clock: clock, logger: logger)
        return await withTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: run.executor) {
                do { run.finish(.returned(try await entry.run(input, context))) } catch { run.finish(.threw(error)) }
            }
            _ = run.replay(journal, cancel: { group.cancelAll() })
            let value = inspect(run)
            run.stop()
            group.cancelAll()
            run.executor.drain()
            return value
        }
    }

    /// Replays a history through its workflow's code, then asks the code query `name`: the
    /// answer for a workflow that runs nowhere (it ended, or waits to be taken up), from
    /// its state at the end of its journal. Nothing is recorded.
    public func query(_ history: WorkflowHistory, name: String) async throws -> JSONText {
        guard let entry = registry.entry(named: history.workflow) else {
            throw ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow named '\(history.workflow)' is registered here, so its queries cannot be answered")
        }
        let journal = try WorkflowJournal(history.events)
        guard let started = journal.started, let startedAt = journal.entries.first?.recordedAt else {
            throw ActivityFailure.nonRetryable(.invalidInput, "workflow \(history.workflowID)'s history has no events")
        }
        let answer: Result<JSONText, any Error> = await replaying(journal, of: history, entry: entry, input: started.input, startedAt: startedAt) { run in
            if let divergence = run.divergence {
                return .failure(ActivityFailure.nonRetryable(.invalidInput, "workflow \(history.workflowID)'s code does not replay its journal, so it cannot answer: \(divergence)"))
            }
            return Result { try run.answerQuery(name) }
        }
        return try answer.get()
    }

    /// Replays each history; the results are in the same order.
    public func replay(_ histories: [WorkflowHistory]) async -> [ReplayResult] {
        var results: [ReplayResult] = []
        for history in histories { results.append(await replay(history)) }
        return results
    }

    private static func verdict(_ run: WorkflowRun, journal: WorkflowJournal) -> ReplayResult.Verdict {
        if let divergence = run.divergence { return .diverges(divergence) }
        guard let recordedEnd = journal.ending else { return .replays }
        let codeEnd: String = switch run.ending {
        case .returned?: "workflow_completed"
        case .threw(is CancellationError)?: "workflow_cancelled"
        case .threw?: "workflow_failed"
        case nil: "no end: it still waits after the last recorded event"
        }
        guard codeEnd != recordedEnd.kind else { return .replays }
        return .diverges(WorkflowNondeterminism(
            workflowID: run.workflowID, position: run.issuedCount, recorded: "the end \(recordedEnd.kind)", requested: codeEnd
        ))
    }
}

/// Whether one recorded run replays with today's code.
public struct ReplayResult: Sendable, Equatable, CustomStringConvertible {
    public enum Verdict: Sendable, Equatable {
        /// The code issues every recorded command at its position (and ends as recorded).
        case replays
        /// The code does something else; deploying it would park this run.
        case diverges(WorkflowNondeterminism)
        /// The history cannot be replayed here: its workflow is not registered, or its
        /// journal does not hold together.
        case unreadable(String)
    }

    public var workflowID: String
    public var workflow: String
    public var verdict: Verdict
    /// How many recorded commands the code issued.
    public var commands: Int

    public var replays: Bool { verdict == .replays }

    public var description: String {
        switch verdict {
        case .replays: "\(workflowID) (\(workflow)): replays (\(commands) commands)"
        case .diverges(let divergence): "\(workflowID) (\(workflow)): DIVERGES: \(divergence.description)"
        case .unreadable(let reason): "\(workflowID) (\(workflow)): cannot replay: \(reason)"
        }
    }
}
