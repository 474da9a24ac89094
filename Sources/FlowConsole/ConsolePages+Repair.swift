import FlowCore
import Foundation
import Hummingbird

/// The workflow page's Signal, Query and Reset forms, and the list's bulk actions with
/// their dry-run preview.
extension ConsolePages {
    func signalWorkflow(_ request: Request, _ id: String) async throws -> Response {
        let form = try await checkedForm(request)
        guard let name = form["name"] else { throw Refusal(status: .badRequest, message: "Name the signal to send.") }
        let answer = try await backend.signal(workflowID: id, name: name, input: try Self.jsonInput(form["input"]))
        return done(answer.message, back: "/workflows/\(Views.segment(id))", backLabel: "Back to the workflow")
    }

    func queryWorkflow(_ request: Request, _ id: String) async throws -> Response {
        let form = try await checkedForm(request)
        guard let name = form["name"] else { throw Refusal(status: .badRequest, message: "Name the query to run.") }
        let answer = try await backend.ask(workflowID: id, name: name)
        return page("Query \(name)", section: "/workflows", template: "query-answer", values: [
            "id": id, "path": Views.segment(id), "name": name, "answer": Views.pretty(answer.output),
        ])
    }

    func resetWorkflow(_ request: Request, _ id: String) async throws -> Response {
        let form = try await checkedForm(request)
        guard let position = form["position"].flatMap(Int.init), position >= 0 else {
            throw Refusal(status: .badRequest, message: "Choose the command to reset to.")
        }
        let answer = try await backend.reset(workflowID: id, position: position, dropSignals: form["drop_signals"] != nil)
        return done(answer.message, back: "/workflows/\(Views.segment(id))", backLabel: "Back to the workflow")
    }

    /// A bulk action: without `confirm`, a preview that changes nothing and lists the
    /// workflows it would act on, with the button that does it; with it, the action on
    /// each, and a line for each.
    func bulk(_ request: Request) async throws -> Response {
        let form = try await checkedForm(request)
        guard let filter = form["where"] else { throw Refusal(status: .badRequest, message: "A bulk action needs a Where filter: filter the list first.") }
        let limit = form["limit"].flatMap(Int.init) ?? 100
        guard (1...1000).contains(limit) else { throw Refusal(status: .badRequest, message: "At most must be from 1 to 1000.") }
        let action: BulkAction
        switch form["action"] {
        case "cancel": action = .cancel(reason: "cancelled from the console by \(backend.configuration.operatorName)")
        case "signal":
            guard let name = form["name"] else { throw Refusal(status: .badRequest, message: "Name the signal to send.") }
            action = .signal(name: name, input: try Self.jsonInput(form["input"]))
        case "reset":
            guard let position = form["position"].flatMap(Int.init), position >= 0 else { throw Refusal(status: .badRequest, message: "Give the command to reset to.") }
            action = .resetTo(position: position, dropSignals: form["drop_signals"] != nil)
        default: throw Refusal(status: .badRequest, message: "Choose an action: cancel, signal or reset.")
        }
        let selected = try await backend.select(action, where: filter, limit: limit)
        let back = "/workflows?" + Form.encode(["where": filter])
        guard form["confirm"] == "yes" else {
            return page("Preview: \(action.verb)", section: "/workflows", template: "bulk-preview", values: [
                "verb": action.verb, "count": selected.count, "workflows": selected.map { ["id": $0.id, "path": Views.segment($0.id), "status": $0.status.rawValue] },
                "fields": form.values.filter { $0.key != "csrf" && $0.key != "confirm" }.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] },
                "csrf": security.csrfToken, "back": back, "any": !selected.isEmpty,
            ])
        }
        var lines: [String] = []
        var failed = 0
        for workflow in selected {
            let (ok, outcome) = await backend.act(action, on: workflow.id)
            if !ok { failed += 1 }
            lines.append("\(workflow.id): \(ok ? "" : "not done: ")\(outcome)")
        }
        return done("\(action.verb): \(selected.count - failed) of \(selected.count) done.", list: lines, back: back, backLabel: "Back to the list")
    }

    /// A form's JSON input: `{}` when empty, refused with where it stops when not JSON.
    static func jsonInput(_ text: String?) throws -> JSONText {
        guard let text else { return .emptyObject }
        do {
            return try JSONText(validating: text)
        } catch {
            throw Refusal(status: .badRequest, message: "The input is not JSON: \(error)")
        }
    }
}
