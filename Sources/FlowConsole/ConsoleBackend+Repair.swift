import FlowClient
import FlowCore
import FlowDeadLetters
import Foundation

/// What an operator does to workflows from the console, besides cancel and pause: signals,
/// queries, resets, and the same on many workflows at once. Every change goes to the
/// coordinator as the command `flow workflow …` sends, names the operator, and is written
/// to the audit log.
extension ConsoleBackend {
    func signal(workflowID: String, name: String, input: JSONText) async throws -> CommandAnswer {
        let answer = try await client.command(.signal, WorkflowCommand.Signal(workflowID: workflowID, name: name, input: input, signalID: UUID().uuidString))
        audit("workflow signal", workflowID: workflowID, answer.accepted ? answer.message : "refused: \(answer.message)")
        return answer
    }

    func ask(workflowID: String, name: String) async throws -> WorkflowQueryResult {
        try await client.query(.workflowState, WorkflowQuery.Ask(workflowID: workflowID, name: name), as: WorkflowQueryResult.self)
    }

    func reset(workflowID: String, position: Int, dropSignals: Bool) async throws -> CommandAnswer {
        let command = WorkflowCommand.Reset(
            workflowID: workflowID, position: position, dropSignals: dropSignals ? true : nil, reason: "reset from the console by \(configuration.operatorName)",
            resetID: UUID().uuidString
        )
        let answer = try await client.command(.reset, command)
        audit("workflow reset", workflowID: workflowID, answer.accepted ? answer.message : "refused: \(answer.message)")
        return answer
    }

    /// The workflows a bulk action takes, newest first, at most `limit`: those `filter`
    /// keeps that the action applies to (open ones for a cancel or a signal; current runs
    /// for a reset).
    func select(_ action: BulkAction, where filter: String, limit: Int) async throws -> [WorkflowSummary] {
        let statuses: [WorkflowStatus]? = action.isReset ? nil : [.running, .parked]
        var selected: [WorkflowSummary] = []
        var page: String?
        repeat {
            let query = WorkflowQuery.List(statuses: statuses, limit: min(WorkflowQuery.maximumPageSize, limit - selected.count), page: page, where: filter)
            let listed = try await workflows(query)
            selected += listed.workflows.filter { $0.runOf == nil }
            page = listed.nextPage
        } while page != nil && selected.count < limit
        return Array(selected.prefix(limit))
    }

    /// Carries out `action` on one workflow, for a bulk action; says what came of it.
    func act(_ action: BulkAction, on workflowID: String) async -> (ok: Bool, outcome: String) {
        do {
            let answer: CommandAnswer
            switch action {
            case .cancel(let reason):
                answer = try await client.command(.cancel, WorkflowCommand.Cancel(workflowID: workflowID, reason: reason))
                audit("workflow cancel", workflowID: workflowID, answer.accepted ? answer.message : "refused: \(answer.message)")
            case .signal(let name, let input):
                answer = try await signal(workflowID: workflowID, name: name, input: input)
            case .resetTo(let position, let dropSignals):
                answer = try await reset(workflowID: workflowID, position: position, dropSignals: dropSignals)
            }
            return (answer.accepted, answer.message)
        } catch {
            audit("workflow action", workflowID: workflowID, "failed: \(error)")
            return (false, "\(error)")
        }
    }

    private func audit(_ action: String, workflowID: String, _ outcome: String) {
        guard let file = configuration.auditLog else { return }
        // The action happened; a log that cannot be written is said in the console's log.
        do {
            try AuditLog(file: file).record(action: action, operatorName: configuration.operatorName, workflowID: workflowID, outcome: outcome)
        } catch {
            FileHandle.standardError.write(Data("console: could not write the audit log \(file.path): \(error)\n".utf8))
        }
    }
}

/// An action the console takes on many workflows at once.
enum BulkAction: Sendable, Equatable {
    case cancel(reason: String)
    case signal(name: String, input: JSONText)
    case resetTo(position: Int, dropSignals: Bool)

    /// A reset acts on ended workflows too; a cancel or a signal on open ones only.
    var isReset: Bool { if case .resetTo = self { true } else { false } }

    /// The action in words, for the preview and the results.
    var verb: String {
        switch self {
        case .cancel: "cancel"
        case .signal(let name, _): "signal \(name)"
        case .resetTo(let position, let dropSignals): "reset to command \(position)\(dropSignals ? ", dropping later signals" : "")"
        }
    }
}
