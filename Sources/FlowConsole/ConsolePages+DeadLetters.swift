import FlowClient
import FlowContracts
import FlowCore
import FlowDeadLetters
import Foundation
import Hummingbird

/// The dead-letter pages: the list with `flow dlq list`'s filters, one letter, and the
/// replay (after a dry run) and purge (after a confirmation) of one or a filtered group.
extension ConsolePages {
    // MARK: Dead letters

    static let deadLettersPerPage = 50

    /// The filters of `flow dlq list`, from a form; an age that does not read is refused
    /// with the forms it takes.
    private func filter(_ form: Form) throws -> DeadLetterFilter {
        func age(_ field: String) throws -> Duration? {
            guard let text = form[field] else { return nil }
            guard let age = DeadLetterFilter.parseAge(text) else {
                throw Refusal(status: .badRequest, message: "'\(text)' is not an age: write it as 30s, 15m, 2h or 7d")
            }
            return age
        }
        return DeadLetterFilter(
            queue: form["queue"], activity: form["activity"], reason: form["reason"], error: form["error"], olderThan: try age("older"),
            newerThan: try age("newer"), messageID: form["id"], workflowID: form["workflow"]
        )
    }

    private func filterValues(_ form: Form) -> [String: String] {
        Dictionary(uniqueKeysWithValues: ["queue", "activity", "reason", "error", "older", "newer", "workflow", "id"].map { ($0, form[$0] ?? "") })
    }

    func deadLetters(_ request: Request) async throws -> Response {
        let query = Form(query: request.uri.query)
        let filter = try filter(query)
        let letters = try await deadLetterCache.list(key: Form.encode(filterValues(query))) { try await backend.deadLetterList(filter) }
        let pageNumber = max(0, Int(query["page"] ?? "") ?? 0)
        let start = min(pageNumber * Self.deadLettersPerPage, letters.count)
        let shown = letters[start..<min(start + Self.deadLettersPerPage, letters.count)]
        var values: [String: Any] = [
            "filters": filterValues(query), "csrf": security.csrfToken, "letters": Views.deadLetterRows(shown), "shown": shown.count,
            "total": letters.count, "filtered": filterValues(query).values.contains { !$0.isEmpty },
        ]
        let base = Form.encode(filterValues(query).filter { !$0.value.isEmpty })
        if start + Self.deadLettersPerPage < letters.count { values["nextPage"] = "/dead-letters?" + base + (base.isEmpty ? "" : "&") + "page=\(pageNumber + 1)" }
        if pageNumber > 0 { values["previousPage"] = "/dead-letters?" + base + (base.isEmpty ? "" : "&") + "page=\(pageNumber - 1)" }
        return page("Dead letters", section: "/dead-letters", template: "dead-letters", values: values)
    }

    func deadLetter(_ id: String) async throws -> Response {
        guard let (summary, headers, body) = try await backend.deadLetter(id: id) else {
            return problem(.notFound, "No dead letter has id \(id) now: it may have been replayed or purged.", back: "/dead-letters")
        }
        let values: [String: Any] = [
            "summary": [
                "queue": summary.queue ?? "", "activity": summary.activity ?? "", "reason": summary.reason, "errorType": summary.errorType ?? "",
                "error": summary.error ?? "", "attempts": summary.attempts.map(String.init) ?? "", "replays": summary.replays, "workflowID": summary.workflowID ?? "",
            ],
            "headers": headers.map { ["name": $0.0, "value": $0.1] }, "body": body, "csrf": security.csrfToken,
            "filters": ["queue": "", "activity": "", "reason": "", "error": "", "older": "", "newer": "", "workflow": "", "id": id],
        ]
        return page("Dead letter \(id)", section: "/dead-letters", template: "dead-letter", values: values)
    }

    func replayDeadLetters(_ request: Request) async throws -> Response {
        let form = try await checkedForm(request)
        let filter = try filter(form)
        let dryRun = form["dry_run"] == "1"
        let report = try await backend.replay(filter, dryRun: dryRun)
        if dryRun {
            let values: [String: Any] = [
                "count": report.replayed.count, "replayed": report.replayed.map { ["id": $0.id, "queue": $0.queue] },
                "refused": report.refused.isEmpty ? [] : [["items": report.refused.map { ["id": $0.id, "reason": $0.reason] }]],
                "csrf": security.csrfToken, "filters": filterValues(form),
            ]
            return page("Replay: a dry run", section: "/dead-letters", template: "replay-preview", values: values)
        }
        await deadLetterCache.clear()
        return done("Replayed \(report.replayed.count) message(s).", list: report.replayed.map { "\($0.id) to \($0.queue)" } + report.refused.map { "\($0.id) not replayed: \($0.reason)" },
                    back: "/dead-letters", backLabel: "Back to the dead letters")
    }

    func purgeDeadLetters(_ request: Request) async throws -> Response {
        let form = try await checkedForm(request)
        let filter = try filter(form)
        guard form["confirm"] == "yes" else {
            let ids = try await backend.deadLetterList(filter).map(\.id)
            let values: [String: Any] = ["count": ids.count, "ids": ids, "csrf": security.csrfToken, "filters": filterValues(form)]
            return page("Purge: are you sure?", section: "/dead-letters", template: "purge-confirm", values: values)
        }
        let purged = try await backend.purge(filter)
        await deadLetterCache.clear()
        return done("Purged \(purged.count) message(s) for good.", list: purged, back: "/dead-letters", backLabel: "Back to the dead letters")
    }
}

/// The dead-letter list, read at most every few seconds: reading it holds every message
/// in the queue, which is not something to do on every click of a page link.
actor DeadLetterCache {
    private var entries: [String: (at: ContinuousClock.Instant, letters: [DeadLetterSummary])] = [:]

    func list(key: String, read: @Sendable () async throws -> [DeadLetterSummary]) async throws -> [DeadLetterSummary] {
        if let entry = entries[key], ContinuousClock.now - entry.at < .seconds(5) { return entry.letters }
        let letters = try await read()
        entries[key] = (.now, letters)
        return letters
    }

    func clear() { entries = [:] }
}
