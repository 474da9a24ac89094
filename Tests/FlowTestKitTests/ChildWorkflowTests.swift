import FlowContracts
import FlowCoordinator
import FlowCore
import FlowTestKit
import Foundation
import Logging
import Testing

/// Echoes its text through `echo` after a sleep of its own, and fails on "fail".
struct ShoutingChild: Workflow {
    static let name = "shouting_child"
    func run(context: WorkflowContext, input: String) async throws -> String {
        try await context.sleep(for: .seconds(600))
        if input == "fail" { throw ActivityFailure.nonRetryable(.invalidInput, "asked to fail") }
        let echoed = try await context.execute(Echo.self, try JSONText(encoding: ["text": input]))
        return try echoed.decode([String: String].self)["text", default: ""].uppercased()
    }
}

/// Runs one child per word, two at once, and reports each result or failure.
struct ChoirParent: Workflow {
    static let name = "choir"
    func run(context: WorkflowContext, input: [String]) async throws -> [String] {
        async let first = outcome(context, input[0])
        async let second = outcome(context, input[1])
        return try await [first, second]
    }

    private func outcome(_ context: WorkflowContext, _ word: String) async throws -> String {
        do {
            return try await context.executeChild(ShoutingChild.self, word, id: "choir-\(word)")
        } catch let error as ChildWorkflowError {
            return "\(error.workflowID) \(error.failure.type): \(error.failure.message)"
        }
    }
}

/// The same parent after a change that starts another child at the same position.
struct ChangedChoirParent: Workflow {
    static let name = "choir"
    func run(context: WorkflowContext, input: [String]) async throws -> [String] {
        [try await context.executeChild(ApprovalWorkflow.self, JSONText.emptyObject, id: "other")]
    }
}

@Suite("child workflows in FlowTestKit")
struct ChildWorkflowKitTests {
    func environment() -> WorkflowTestEnvironment {
        var environment = WorkflowTestEnvironment()
        environment.stub(Echo.self) { $0 }
        environment.register(ShoutingChild())
        return environment
    }

    @Test("children run in the test, results and failures reach the parent, and each child's run is kept")
    func children() async throws {
        let run = try await environment().run(ChoirParent(), input: ["hi", "fail"], id: "choir")
        #expect(run.status == .completed, "\(String(describing: run.error))")
        #expect(try run.output(as: [String].self) == ["HI", "choir-fail InvalidInput: asked to fail"])
        #expect(run.children.keys.sorted() == ["choir-fail", "choir-hi"])
        #expect(run.children["choir-hi"]?.status == .completed && run.children["choir-fail"]?.status == .failed)
        #expect(try run.children["choir-hi"]?.calls(of: Echo.self).count == 1)
        #expect(run.endTime == WorkflowTestEnvironment().startTime, "a child's sleep moves its own clock, not its parent's")
        let kinds = try run.journal.entries.map(\.event.kind)
        #expect(kinds.filter { $0 == "child_scheduled" }.count == 2 && kinds.contains("child_completed") && kinds.contains("child_failed"))
    }

    @Test("a child whose workflow is not registered fails into the parent with what to add")
    func unregisteredChild() async throws {
        var environment = WorkflowTestEnvironment()
        environment.stub(Echo.self) { $0 }
        let run = try await environment.run(ChoirParent(), input: ["a", "b"], id: "choir")
        let output = try run.output(as: [String].self)
        #expect(output.allSatisfy { $0.contains("UnknownWorkflow") && $0.contains("environment.register(shouting_child())") }, "\(output)")
    }

    @Test("a parent's history replays with its code, and code that starts another child there diverges")
    func replay() async throws {
        let run = try await environment().run(ChoirParent(), input: ["hi", "there"], id: "choir")
        var registry = WorkflowRegistry()
        registry.register(ChoirParent())
        let replayed = await WorkflowReplayer(registry: registry, logger: Logger(label: "test")).replay(run.history)
        #expect(replayed.replays, "\(replayed)")
        var changed = WorkflowRegistry()
        changed.register(ChangedChoirParent())
        let diverged = await WorkflowReplayer(registry: changed, logger: Logger(label: "test")).replay(run.history)
        guard case .diverges(let divergence) = diverged.verdict else {
            Issue.record("expected a divergence, got \(diverged)")
            return
        }
        #expect(divergence.position == 0 && divergence.recorded == "child workflow shouting_child" && divergence.requested == "child workflow approval")
    }
}
