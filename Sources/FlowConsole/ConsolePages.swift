import FlowClient
import FlowContracts
import FlowCore
import FlowDeadLetters
import Foundation
import Hummingbird
import Mustache
import NIOCore

/// The console's routes: each reads through ``ConsoleBackend`` and renders a template.
struct ConsolePages: Sendable {
    let backend: ConsoleBackend
    let security: ConsoleSecurity
    let library: MustacheLibrary
    let deadLetterCache = DeadLetterCache()

    static let sections: [(name: String, path: String)] = [
        ("Workflows", "/workflows"), ("Queues and workers", "/queues"), ("Dead letters", "/dead-letters"), ("Schedules", "/schedules"),
        ("Training jobs", "/training"), ("OpenAI costs", "/costs"),
    ]

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ConsoleSecurityMiddleware(security: security))
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/workflows"]) }
        router.get("/healthz") { _, _ in Self.plain(.ok, "ok") }
        router.get("/static/console.css") { _, _ in Self.asset(StaticAssets.stylesheet, type: "text/css; charset=utf-8") }
        router.get("/static/console.js") { _, _ in Self.asset(StaticAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/login") { _, _ in page("Sign in", section: nil, template: "login", values: [:]) }
        router.post("/login") { request, _ in try await logIn(request) }
        router.get("/workflows") { request, _ in try await guarded { try await workflows(request) } }
        router.get("/workflows/:id") { _, context in try await guarded { try await workflow(Self.parameter(context)) } }
        router.post("/workflows/:id/cancel") { request, context in try await guarded { try await cancelWorkflow(request, Self.parameter(context)) } }
        router.post("/workflows/:id/replay") { request, context in try await guarded { try await replayWorkflow(request, Self.parameter(context)) } }
        router.get("/queues") { _, _ in try await guarded { try await queues() } }
        router.get("/dead-letters") { request, _ in try await guarded { try await deadLetters(request) } }
        router.get("/dead-letters/:id") { _, context in try await guarded { try await deadLetter(Self.parameter(context)) } }
        router.post("/dead-letters/replay") { request, _ in try await guarded { try await replayDeadLetters(request) } }
        router.post("/dead-letters/purge") { request, _ in try await guarded { try await purgeDeadLetters(request) } }
        router.get("/schedules") { _, _ in try await guarded { try await schedules() } }
        router.get("/training") { _, _ in try await guarded { try await training() } }
        router.get("/training/:id") { _, context in try await guarded { try await trainingJob(Self.parameter(context)) } }
        router.post("/training/:id/cancel") { request, context in try await guarded { try await cancelTraining(request, Self.parameter(context)) } }
        router.get("/costs") { _, _ in try await guarded { await costs() } }
        return router
    }

    // MARK: Workflows

    private func workflows(_ request: Request) async throws -> Response {
        let query = Form(query: request.uri.query)
        let status = query["status"].flatMap(WorkflowStatus.init(rawValue:))
        let list = WorkflowQuery.List(
            statuses: status.map { [$0] }, name: query["name"], idContains: query["q"], limit: 50, page: query["page"]
        )
        let answer = try await backend.workflows(list)
        let rows = Views.workflowRows(answer)
        if query["fragment"] == "rows" {
            return Self.html(.ok, library.render(["workflows": rows], withTemplate: "workflow-rows") ?? "")
        }
        var filters = query.values
        filters["page"] = nil
        let filterQuery = Form.encode(filters)
        var values: [String: Any] = [
            "filters": ["q": query["q"] ?? "", "name": query["name"] ?? ""], "workflows": rows, "shown": answer.workflows.count, "total": answer.total,
            "filtered": status != nil || query["q"] != nil || query["name"] != nil,
            "statuses": [["value": "", "label": "any", "selected": status == nil] as [String: Any]]
                + WorkflowStatus.allCases.map { ["value": $0.rawValue, "label": $0.rawValue, "selected": $0 == status] },
            "livePath": "/workflows?" + Form.encode(query.values.merging(["fragment": "rows"]) { _, new in new }),
        ]
        if let next = answer.nextPage { values["nextPage"] = "/workflows?" + Form.encode(filters.merging(["page": next]) { _, new in new }) }
        if query["page"] != nil { values["firstPage"] = "/workflows" + (filterQuery.isEmpty ? "" : "?" + filterQuery) }
        return page("Workflows", section: "/workflows", template: "workflows", values: values)
    }

    private func workflow(_ id: String) async throws -> Response {
        let (description, history) = try await backend.workflow(id)
        return page("Workflow \(id)", section: "/workflows", template: "workflow", values: Views.workflow(description, history: history, csrf: security.csrfToken))
    }

    private func cancelWorkflow(_ request: Request, _ id: String) async throws -> Response {
        _ = try await checkedForm(request)
        let answer = try await backend.cancel(workflowID: id)
        return done(answer.message, back: "/workflows/\(Views.segment(id))", backLabel: "Back to the workflow")
    }

    private func replayWorkflow(_ request: Request, _ id: String) async throws -> Response {
        _ = try await checkedForm(request)
        let report = try await backend.replay(DeadLetterFilter(workflowID: id), dryRun: false)
        await deadLetterCache.clear()
        let message = report.replayed.isEmpty
            ? "No dead letter belongs to workflow \(id) now: it may have been replayed already."
            : "Replayed \(report.replayed.count) message(s) of workflow \(id); the workflow continues when the worker answers."
        return done(message, list: report.replayed.map { "\($0.id) to \($0.queue)" } + report.refused.map { "\($0.id) not replayed: \($0.reason)" },
                    back: "/workflows/\(Views.segment(id))", backLabel: "Back to the workflow")
    }

    // MARK: Queues and processes

    private func queues() async throws -> Response {
        var values: [String: Any] = [:]
        do {
            values["queues"] = try await backend.queues().map { queue in
                [
                    "name": queue.name, "ready": queue.messagesReady ?? 0, "unacked": queue.messagesUnacknowledged ?? 0, "consumers": queue.consumers ?? 0,
                    "publishRate": Views.number(queue.messageStats?.publishDetails?.rate, digits: 1),
                    "deliverRate": Views.number(queue.messageStats?.deliverGetDetails?.rate, digits: 1),
                ] as [String: Any]
            }
        } catch {
            values["managementProblem"] = "\(error)"
        }
        values["processes"] = await backend.processes().map { report in
            let metrics = report.metrics
            return [
                "name": report.endpoint.name, "url": report.endpoint.url, "healthClass": report.healthy ? "healthy" : "down",
                "healthLabel": report.healthy ? "healthy" : "down", "health": report.healthy ? "" : report.health,
                "completed": Int(metrics?.sum("flow_activities_total", matching: ["outcome": "completed"]) ?? 0),
                "failed": Int((metrics?.sum("flow_activities_total", matching: ["outcome": "failed"]) ?? 0) + (metrics?.sum("flow_activities_total", matching: ["outcome": "retried"]) ?? 0)),
                "deadLettered": Int(metrics?.sum("flow_activities_total", matching: ["outcome": "dead_lettered"]) ?? 0),
                "inFlight": Int(metrics?.sum("flow_activities_in_flight") ?? 0),
                "finishedRate": report.rates.map { Views.number($0.finished, digits: 1) } ?? "",
                "failedRate": report.rates.map { Views.number($0.failed, digits: 1) } ?? "",
            ] as [String: Any]
        }
        return page("Queues and workers", section: "/queues", template: "queues", values: values)
    }

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

    private func deadLetters(_ request: Request) async throws -> Response {
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

    private func deadLetter(_ id: String) async throws -> Response {
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

    private func replayDeadLetters(_ request: Request) async throws -> Response {
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

    private func purgeDeadLetters(_ request: Request) async throws -> Response {
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

    // MARK: Schedules, training, costs

    private func schedules() async throws -> Response {
        let list = try await backend.schedules()
        let rows: [[String: Any]] = list.schedules.map { schedule in
            var row: [String: Any] = [
                "name": schedule.name, "workflow": schedule.workflow, "recurrence": schedule.cron.map { "cron \($0)" } ?? schedule.everySeconds.map { "every \($0) s" } ?? "",
                "nextRunAt": Views.time(schedule.nextRunAt), "lastRunAt": Views.time(schedule.lastRunAt), "runs": schedule.runs,
            ]
            if let id = schedule.lastWorkflowID {
                row["lastWorkflowID"] = id
                row["lastPath"] = Views.segment(id)
                row["lastStatus"] = schedule.lastStatus?.rawValue ?? ""
            }
            return row
        }
        return page("Schedules", section: "/schedules", template: "schedules", values: ["schedules": rows])
    }

    private func training() async throws -> Response {
        do {
            let jobs = try await backend.trainingJobs()
            return page("Training jobs", section: "/training", template: "training", values: ["jobs": jobs.map(Views.trainingJob)])
        } catch let silent as CoordinatorClient.NoAnswer {
            return page("Training jobs", section: "/training", template: "training", values: ["problem": "No ML worker answered list_training_jobs in time (\(silent.timeout)): is `flow worker ml` running?", "jobs": []])
        } catch let missing as ConsoleBackend.NoConsumer {
            return page("Training jobs", section: "/training", template: "training", values: ["problem": missing.description, "jobs": []])
        }
    }

    private func trainingJob(_ id: String) async throws -> Response {
        let job = try await backend.trainingJob(id)
        var values = Views.trainingJob(job)
        values["curve"] = LossCurve(losses: job.lossHistory ?? []).svg
        values["csrf"] = security.csrfToken
        return page("Training job \(id)", section: "/training", template: "training-job", values: values)
    }

    private func cancelTraining(_ request: Request, _ id: String) async throws -> Response {
        _ = try await checkedForm(request)
        let job = try await backend.cancelTraining(id)
        return done("Job \(id) is \(job.state.rawValue)\(job.cancelRequested ? ", cancel requested: it stops at its next checkpoint" : "").", back: "/training/\(Views.segment(id))", backLabel: "Back to the job")
    }

    private func costs() async -> Response {
        let reports = await backend.processes().filter { ($0.metrics?.samples.contains { $0.name.hasPrefix("flow_openai_") }) == true }
        var values: [String: Any] = [:]
        guard !reports.isEmpty else {
            values["problem"] = "No OpenAI worker's /metrics could be read: start `flow worker openai`, or list its address in FLOW_CONSOLE_ENDPOINTS."
            values["spentToday"] = "0.00"
            values["budget"] = "unknown"
            values["models"] = [[String: Any]]()
            return page("OpenAI costs", section: "/costs", template: "costs", values: values)
        }
        let metrics = reports.compactMap(\.metrics)
        func total(_ name: String, _ labels: [String: String] = [:]) -> Double { metrics.reduce(0) { $0 + $1.sum(name, matching: labels) } }
        let spent = total("flow_openai_spent_today_usd")
        let budget = metrics.compactMap { $0.samples.first { $0.name == "flow_openai_daily_budget_usd" }?.value }.max()
        values["spentToday"] = Views.number(spent, digits: 4)
        values["budget"] = budget.map { $0 > 0 ? "$" + Views.number($0, digits: 2) : "none" } ?? "unknown"
        if let budget, budget > 0 { values["share"] = Int((spent / budget * 100).rounded()) }
        let models = Set(metrics.flatMap { $0.labelValues("flow_openai_requests_total", "model") + $0.labelValues("flow_openai_cost_usd_total", "model") }).sorted()
        values["models"] = models.map { model in
            [
                "model": model, "calls": Int(total("flow_openai_requests_total", ["model": model])), "cached": Int(total("flow_openai_requests_total", ["model": model, "cached": "true"])),
                "prompt": Int(total("flow_openai_tokens_total", ["model": model, "kind": "prompt"])), "completion": Int(total("flow_openai_tokens_total", ["model": model, "kind": "completion"])),
                "dollars": Views.number(total("flow_openai_cost_usd_total", ["model": model]), digits: 4),
                "today": Views.number(total("flow_openai_model_spent_today_usd", ["model": model]), digits: 4),
            ] as [String: Any]
        }
        return page("OpenAI costs", section: "/costs", template: "costs", values: values)
    }

    // MARK: Signing in

    private func logIn(_ request: Request) async throws -> Response {
        let form = Form(body: try await request.body.collect(upTo: 16 * 1024))
        guard security.token != nil else { return Response(status: .seeOther, headers: [.location: "/workflows"]) }
        guard let session = security.logIn(with: form["token"] ?? "") else {
            return page("Sign in", section: nil, template: "login", values: ["notice": "That token is not this console's."], status: .unauthorized)
        }
        var response = Response(status: .seeOther, headers: [.location: "/workflows"])
        response.setCookie(Cookie(name: ConsoleSecurity.cookieName, value: session, path: "/", httpOnly: true, sameSite: .strict))
        return response
    }

    // MARK: Rendering

    struct Refusal: Error {
        var status: HTTPResponse.Status
        var message: String
    }

    /// A form whose CSRF token is this console's.
    private func checkedForm(_ request: Request) async throws -> Form {
        let form = Form(body: try await request.body.collect(upTo: 64 * 1024))
        guard let token = form["csrf"], ConsoleSecurity.same(token, security.csrfToken) else {
            throw Refusal(status: .forbidden, message: "This form has no valid CSRF token (the console restarted, or the form came from elsewhere): reload the page and try again.")
        }
        return form
    }

    /// Runs a page, turning what went wrong into a page that says so.
    private func guarded(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let refusal as Refusal {
            return problem(refusal.status, refusal.message, back: "/workflows")
        } catch let refused as CoordinatorClient.Refused {
            let status: HTTPResponse.Status = refused.message.contains("no workflow has id") ? .notFound : .badRequest
            return problem(status, refused.message, back: "/workflows")
        } catch let silent as CoordinatorClient.NoAnswer {
            return problem(.badGateway, silent.description, back: "/workflows")
        } catch let missing as ConsoleBackend.NoConsumer {
            return problem(.serviceUnavailable, missing.description, back: "/workflows")
        } catch let failure as ActivityFailure {
            return problem(failure.kind == .jobNotFound ? .notFound : .badGateway, failure.description, back: "/training")
        } catch {
            return problem(.badGateway, "\(error)", back: "/workflows")
        }
    }

    private func page(_ title: String, section: String?, template: String, values: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        var values = values
        let notice = values.removeValue(forKey: "notice")
        let content = library.render(values, withTemplate: template) ?? ""
        var layout: [String: Any] = [
            "title": title, "content": content,
            "sections": Self.sections.map { ["name": $0.name, "path": $0.path, "current": $0.path == section] as [String: Any] },
        ]
        if let notice { layout["notice"] = notice }
        return Self.html(status, library.render(layout, withTemplate: "layout") ?? "")
    }

    private func problem(_ status: HTTPResponse.Status, _ message: String, back: String) -> Response {
        page("Something went wrong", section: nil, template: "problem", values: ["message": message, "back": back], status: status)
    }

    private func done(_ message: String, list: [String] = [], back: String, backLabel: String) -> Response {
        page("Done", section: nil, template: "action-done", values: ["message": message, "items": list.isEmpty ? [] : [["list": list]], "back": back, "backLabel": backLabel])
    }

    static func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func parameter(_ context: BasicRequestContext) throws -> String {
        guard let raw = context.parameters.get("id"), let id = raw.removingPercentEncoding, !id.isEmpty, id.count <= 500 else {
            throw Refusal(status: .badRequest, message: "That address names no id the console can read.")
        }
        return id
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
