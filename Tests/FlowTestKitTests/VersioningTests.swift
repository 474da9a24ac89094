import FlowContracts
import FlowCoordinator
import FlowCore
import FlowTestKit
import FlowWorkflows
import Foundation
import Logging
import Testing

/// One `echo` step, returning the text echoed.
func say(_ text: String, _ context: WorkflowContext) async throws -> String {
    try await context.execute(Echo.self, try JSONText(encoding: ["text": text])).value["text"]?.stringValue ?? ""
}

/// `greet` as first written: one step.
struct GreetV1: Workflow {
    static let name = "greet"
    func run(context: WorkflowContext, input: JSONText) async throws -> [String] {
        [try await say("hello", context)]
    }
}

/// Version 2 adds a step before the greeting, behind a patch.
struct GreetV2: Workflow {
    static let name = "greet"
    func run(context: WorkflowContext, input: JSONText) async throws -> [String] {
        var said: [String] = []
        if try context.patched("say-welcome") {
            said.append(try await say("welcome", context))
        }
        said.append(try await say("hello", context))
        return said
    }
}

/// The same change made without a patch: what not to do.
struct GreetV2Unpatched: Workflow {
    static let name = "greet"
    func run(context: WorkflowContext, input: JSONText) async throws -> [String] {
        [
            try await say("welcome", context),
            try await say("hello", context),
        ]
    }
}

/// Version 3, once no run of version 1 is left: the patch deprecated.
struct GreetV3: Workflow {
    static let name = "greet"
    func run(context: WorkflowContext, input: JSONText) async throws -> [String] {
        try context.deprecatePatch("say-welcome")
        return [
            try await say("welcome", context),
            try await say("hello", context),
        ]
    }
}

/// Changing workflow code with `patched` and `deprecatePatch`, proven with the replayer:
/// each way a recorded run meets changed code.
@Suite("versioning workflow code")
struct VersioningTests {
    func run<W: Workflow>(_ workflow: W) async throws -> WorkflowTestRun where W.Input == JSONText {
        var environment = WorkflowTestEnvironment()
        environment.stub(Echo.self) { $0 }
        return try await environment.run(workflow, input: .emptyObject)
    }

    func replays<W: Workflow>(_ history: WorkflowHistory, with workflow: W) async -> ReplayResult {
        var registry = WorkflowRegistry()
        registry.register(workflow)
        return await WorkflowReplayer(registry: registry, logger: Logger(label: "test")).replay(history)
    }

    /// `history` cut after its first `count` events: a run that was still open then.
    func open(_ history: WorkflowHistory, first count: Int) -> WorkflowHistory {
        WorkflowHistory(workflowID: history.workflowID, workflow: history.workflow, events: Array(history.events.prefix(count)))
    }

    @Test("runs recorded before a patch take the old path, ended or open; without the patch the same change does not replay")
    func oldRuns() async throws {
        let v1 = try await run(GreetV1()).history
        #expect(await replays(v1, with: GreetV2()).replays, "an ended run of version 1 replays with version 2")
        #expect(await replays(open(v1, first: 2), with: GreetV2()).replays, "an open run of version 1, its step sent, replays with version 2")
        #expect(!(await replays(v1, with: GreetV2Unpatched()).replays), "the same change unpatched diverges")
    }

    @Test("a new run takes the new path and records the patch's marker; it replays with the patched code and with the patch deprecated")
    func newRuns() async throws {
        let v2 = try await run(GreetV2())
        #expect(try v2.output(as: [String].self) == ["welcome", "hello"])
        let commands = try v2.journal.commands
        guard case .marker("patch:say-welcome", _)? = commands.first else { Issue.record("\(commands)"); return }
        #expect(await replays(v2.history, with: GreetV2()).replays)
        #expect(await replays(v2.history, with: GreetV3()).replays, "deprecating keeps reading the marker")
        #expect(!(await replays(try await run(GreetV1()).history, with: GreetV3()).replays), "deprecate only once no run of version 1 is left")
        let v3 = try await run(GreetV3())
        #expect(try v3.journal.commands.count == 2, "a new run of version 3 records no marker")
        #expect(await replays(v3.history, with: GreetV3()).replays)
    }

    @Test("document_onboarding's report step, added behind a patch: a run recorded before it replays with today's code and ends without a report")
    func onboardingBeforeTheReport() async throws {
        // Written by document_onboarding as it was before the report step (commit 7d0f1bd), with FlowTestKit.
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/document_onboarding-before-report.json")
        let history = try WorkflowHistory(contentsOf: fixture)
        let result = await WorkflowReplayer(registry: ApplicationWorkflows.registry(), logger: Logger(label: "test")).replay(history)
        #expect(result.replays, "\(result)")
        let kinds = history.events.map(\.event.kind)
        #expect(!kinds.contains("marker_recorded") && kinds.last == "workflow_completed", "the fixture is a run from before the change")
        let stillOpen = open(history, first: history.events.count - 3)
        #expect(await WorkflowReplayer(registry: ApplicationWorkflows.registry(), logger: Logger(label: "test")).replay(stillOpen).replays)
    }
}
