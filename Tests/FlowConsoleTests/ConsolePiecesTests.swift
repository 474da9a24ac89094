@testable import FlowConsole
import FlowCore
import FlowObservability
import Foundation
import Testing

/// The console's pure parts, with no broker and no browser.
@Suite("console pieces")
struct ConsolePiecesTests {
    @Test("the loss curve has one point per step, inside its frame, and says what it shows", arguments: [1, 2, 7, 400])
    func lossCurve(_ steps: Int) throws {
        let losses = (0..<steps).map { 3.0 * exp(-Double($0) / 50) + 0.1 * sin(Double($0)) }
        let curve = LossCurve(losses: losses)
        let svg = curve.svg
        #expect(svg.components(separatedBy: "<circle class=\"point\"").count - 1 == steps)
        #expect(svg.contains("data-points=\"\(steps)\""))
        #expect(svg.contains("over \(steps) steps"))
        for step in 1...steps {
            let point = curve.point(step: step)
            #expect((0...curve.width).contains(point.x) && (0...curve.height).contains(point.y))
        }
        // The lowest loss is drawn lowest.
        let lowest = losses.indices.min { losses[$0] < losses[$1] }! + 1
        #expect((1...steps).allSatisfy { curve.point(step: $0).y <= curve.point(step: lowest).y })
    }

    @Test("a curve with nothing logged says so, and one with a NaN leaves it out")
    func emptyAndNaN() {
        #expect(LossCurve(losses: []).svg.contains("No step has been logged yet"))
        #expect(LossCurve(losses: [1, .nan, 2]).losses == [1, 2])
    }

    @Test("metrics text is read as samples with their labels, escapes included, and lines it cannot read are skipped")
    func prometheus() {
        let text = """
            # HELP flow_activities_total Activities.
            # TYPE flow_activities_total counter
            flow_activities_total{messaging_destination_name="default-queue",activity="echo",outcome="completed"} 12
            flow_activities_total{messaging_destination_name="default-queue",activity="echo",outcome="failed"} 3
            flow_activities_total{activity="odd \\"name\\"",outcome="completed"} 1
            flow_openai_spent_today_usd 0.25
            this is not a sample
            flow_bad{unterminated="x} 4
            """
        let metrics = PrometheusText(text)
        #expect(metrics.sum("flow_activities_total", matching: ["outcome": "completed"]) == 13)
        #expect(metrics.sum("flow_activities_total", matching: ["activity": "echo"]) == 15)
        #expect(metrics.labelValues("flow_activities_total", "activity") == ["echo", "odd \"name\""])
        #expect(metrics.sum("flow_openai_spent_today_usd") == 0.25)
        #expect(metrics.samples.count == 4)
    }

    @Test("form fields are decoded, cut to 500 characters, and empty ones are absent")
    func forms() {
        let form = Form(query: "q=a+b%2Bc&empty=&name=%3Cscript%3E&q=second&long=" + String(repeating: "x", count: 600))
        #expect(form["q"] == "a b+c")
        #expect(form["empty"] == nil)
        #expect(form["name"] == "<script>")
        #expect(form["long"]?.count == 500)
        #expect(Form.encode(["b": "x y", "a": "1&2", "c": ""]) == "a=1%262&b=x%20y")
    }

    @Test("a console off loopback needs a token of at least 16 characters", arguments: [
        ("127.0.0.1", nil, true), ("localhost", nil, true), ("::1", nil, true), ("0.0.0.0", nil, false), ("10.0.0.5", nil, false),
        ("0.0.0.0", "short-token", false), ("0.0.0.0", "a-token-long-enough-42", true),
    ] as [(String, String?, Bool)])
    func tokens(_ host: String, _ token: String?, _ starts: Bool) {
        let configuration = ConsoleConfiguration(host: host, token: token)
        #expect(((try? configuration.validate()) != nil) == starts)
    }

    @Test("secrets compare in constant time and only equal ones match")
    func secrets() {
        #expect(ConsoleSecurity.same("abc", "abc"))
        #expect(!ConsoleSecurity.same("abc", "abd"))
        #expect(!ConsoleSecurity.same("abc", "abcd"))
        #expect(ConsoleSecurity.randomToken() != ConsoleSecurity.randomToken())
        #expect(ConsoleSecurity.randomToken().count == 64)
    }

    @Test("a workflow's page links its parent and its children, and a workflow with neither shows no such section")
    func family() throws {
        let library = try Templates.library()
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        func page(_ description: WorkflowDescription) -> String {
            library.render(Views.workflow(description, history: [], csrf: "c"), withTemplate: "workflow") ?? ""
        }
        let summary = WorkflowSummary(id: "kid one", name: "collecting", status: .running, cancelRequested: false, startedAt: at, updatedAt: at)
        let child = WorkflowDescription(
            workflow: summary, input: .emptyObject, output: nil, error: nil, steps: [], parent: ParentSummary(workflowID: "mum", position: 2),
            children: [ChildSummary(workflowID: "grandkid", workflow: "sleepless_echo", position: 0, status: "completed", parentClosePolicy: "abandon")]
        )
        let html = page(child)
        #expect(html.contains(#"<a href="/workflows/mum" id="workflow-parent">mum</a>"#))
        #expect(html.contains(#"<a href="/workflows/grandkid">grandkid</a> sleepless_echo <span class="badge completed">completed</span>"#))
        #expect(html.contains("when this ends first: abandon"))
        #expect(html.components(separatedBy: "<li>").count == 2, "one child, listed once")
        let alone = page(WorkflowDescription(workflow: summary, input: .emptyObject, output: nil, error: nil, steps: []))
        #expect(!alone.contains("Child workflows") && !alone.contains("workflow-parent"))
    }

    @Test("a workflow's page lists its runs, first to current, linking the runs before")
    func runs() throws {
        let library = try Templates.library()
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let current = WorkflowSummary(id: "loop", name: "looping", status: .running, cancelRequested: false, startedAt: at, updatedAt: at)
        let first = WorkflowSummary(id: "loop@run-1", name: "looping", status: .continuedAsNew, cancelRequested: false, startedAt: at, updatedAt: at, runOf: "loop")
        var description = WorkflowDescription(workflow: current, input: .emptyObject, output: nil, error: nil, steps: [])
        description.run = 2
        description.runs = [first, current]
        let html = library.render(Views.workflow(description, history: [], csrf: "c"), withTemplate: "workflow") ?? ""
        #expect(html.contains(#"<li><a href="/workflows/loop@run-1">loop@run-1</a> <span class="badge continued_as_new">continued_as_new</span></li><li><strong>loop</strong>"#), "\(html)")
        description.runs = nil
        #expect(!(library.render(Views.workflow(description, history: [], csrf: "c"), withTemplate: "workflow") ?? "").contains("workflow-runs"))
    }

    @Test("a workflow's page offers its commands to reset to, a signal only while it runs, and a query always; a run kept as history offers no reset")
    func operateForms() throws {
        let library = try Templates.library()
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        var summary = WorkflowSummary(id: "w", name: "echo_chain", status: .completed, cancelRequested: false, startedAt: at, updatedAt: at)
        var description = WorkflowDescription(workflow: summary, input: .emptyObject, output: nil, error: nil, steps: [])
        description.commands = [CommandSummary(position: 0, kind: "activity", name: "echo", status: "completed"), CommandSummary(position: 1, kind: "timer", name: "sleep@1", status: "fired")]
        func page() -> String { library.render(Views.workflow(description, history: [], csrf: "c"), withTemplate: "workflow") ?? "" }
        let ended = page()
        #expect(ended.contains(#"<option value="1">1: timer sleep@1 (fired)</option><option value="2">2: after the last command</option>"#), "\(ended)")
        #expect(ended.contains(#"id="run-query""#) && !ended.contains(#"id="send-signal""#), "an ended workflow takes queries, not signals")
        summary.status = .running
        description.workflow = summary
        #expect(page().contains(#"id="send-signal""#))
        summary.runOf = "w0"
        description.workflow = summary
        #expect(!page().contains(#"id="reset""#), "a run kept as history is not reset")
    }
}

