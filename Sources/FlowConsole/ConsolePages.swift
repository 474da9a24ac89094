import FlowClient
import FlowContracts
import FlowCore
import FlowObservability
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
        router.post("/workflows/:id/pause") { request, context in try await guarded { try await pauseWorkflow(request, Self.parameter(context), paused: true) } }
        router.post("/workflows/:id/unpause") { request, context in try await guarded { try await pauseWorkflow(request, Self.parameter(context), paused: false) } }
        router.post("/workflows/:id/replay") { request, context in try await guarded { try await replayWorkflow(request, Self.parameter(context)) } }
        router.post("/workflows/:id/signal") { request, context in try await guarded { try await signalWorkflow(request, Self.parameter(context)) } }
        router.post("/workflows/:id/query") { request, context in try await guarded { try await queryWorkflow(request, Self.parameter(context)) } }
        router.post("/workflows/:id/reset") { request, context in try await guarded { try await resetWorkflow(request, Self.parameter(context)) } }
        router.post("/workflows/bulk") { request, _ in try await guarded { try await bulk(request) } }
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
            statuses: status.map { [$0] }, name: query["name"], idContains: query["q"], limit: 50, page: query["page"], where: query["where"]
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
            "filters": ["q": query["q"] ?? "", "name": query["name"] ?? "", "where": query["where"] ?? ""], "workflows": rows, "shown": answer.workflows.count,
            "total": answer.total, "filtered": status != nil || query["q"] != nil || query["name"] != nil || query["where"] != nil,
            "statuses": [["value": "", "label": "any", "selected": status == nil] as [String: Any]]
                + WorkflowStatus.allCases.map { ["value": $0.rawValue, "label": $0.rawValue, "selected": $0 == status] },
            "livePath": "/workflows?" + Form.encode(query.values.merging(["fragment": "rows"]) { _, new in new }),
            "csrf": security.csrfToken,
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

    private func pauseWorkflow(_ request: Request, _ id: String, paused: Bool) async throws -> Response {
        _ = try await checkedForm(request)
        let answer = try await backend.pause(workflowID: id, paused: paused)
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
                "completed": Int(metrics?.sum(MetricNames.outcomes, matching: [MetricNames.outcome: "completed"]) ?? 0),
                "failed": Int((metrics?.sum(MetricNames.outcomes, matching: [MetricNames.outcome: "failed"]) ?? 0) + (metrics?.sum(MetricNames.outcomes, matching: [MetricNames.outcome: "retried"]) ?? 0)),
                "deadLettered": Int(metrics?.sum(MetricNames.outcomes, matching: [MetricNames.outcome: "dead_lettered"]) ?? 0),
                "inFlight": Int(metrics?.sum(MetricNames.inFlight) ?? 0),
                "finishedRate": report.rates.map { Views.number($0.finished, digits: 1) } ?? "",
                "failedRate": report.rates.map { Views.number($0.failed, digits: 1) } ?? "",
            ] as [String: Any]
        }
        return page("Queues and workers", section: "/queues", template: "queues", values: values)
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
    func checkedForm(_ request: Request) async throws -> Form {
        let form = Form(body: try await request.body.collect(upTo: 64 * 1024))
        guard let token = form["csrf"], ConsoleSecurity.same(token, security.csrfToken) else {
            throw Refusal(status: .forbidden, message: "This form has no valid CSRF token (the console restarted, or the form came from elsewhere): reload the page and try again.")
        }
        return form
    }

    /// Runs a page, turning what went wrong into a page that says so.
    func guarded(_ body: () async throws -> Response) async throws -> Response {
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

    func page(_ title: String, section: String?, template: String, values: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
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

    func problem(_ status: HTTPResponse.Status, _ message: String, back: String) -> Response {
        page("Something went wrong", section: nil, template: "problem", values: ["message": message, "back": back], status: status)
    }

    func done(_ message: String, list: [String] = [], back: String, backLabel: String) -> Response {
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
