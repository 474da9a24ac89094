import FlowCoordinator
import FlowCore
import FlowTesting
import Foundation
import Testing

/// Search attributes and memo set by workflow code, on the in-memory transport: recorded as
/// markers, projected for lists, shown by describe, and replayed.
@Suite("search attributes")
struct SearchAttributeTests {
    @Test("a workflow's search attributes and memo are listed and shown as its code last set them, and replay", arguments: ["SQLite", "in memory"])
    func filed(store: String) async throws {
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: RunCounter(), fixed: Switch()),
            transports: .inMemory(InMemoryBroker()), clock: ManualWallClock(), inMemoryStore: store == "in memory"
        )
        for (id, format) in [("pdf-1", "pdf"), ("docx-1", "docx")] {
            try await harness.coordinator.start(workflow: FilingWorkflow.name, id: id, input: try JSONText(encoding: CountedEcho.Payload(value: format)), recipient: nil)
            _ = try await harness.waitFor(id, [.completed])
        }
        let answers = WorkflowQueryAnswers(store: harness.store)
        let listed = try await answers.list(WorkflowQuery.List(where: #"format = "pdf" AND pages >= 4"#)).workflows.map(\.id)
        #expect(listed == ["pdf-1"])
        #expect(try await answers.list(WorkflowQuery.List(where: "urgent = true")).workflows.isEmpty, "removed by the second upsert")
        let described = try await answers.describe(WorkflowQuery.Describe(workflowID: "docx-1"))
        #expect(described.searchAttributes == ["format": .text("docx"), "pages": .number(4)])
        #expect(try described.memo?.decode(FlowCore.JSONValue.self) == FlowCore.JSONValue.object(["source": .string("upload")]))
        await #expect(throws: ActivityFailure.self) { try await answers.list(WorkflowQuery.List(where: "pages >>= 3")) }
        await #expect(throws: ActivityFailure.self) { try await answers.list(WorkflowQuery.List(where: "name != filing")) }
        let history = WorkflowHistory(workflowID: "pdf-1", workflow: FilingWorkflow.name, events: try await harness.store.journal(workflowID: "pdf-1"))
        #expect(await WorkflowReplayer(registry: TestWorkflows.registry(), logger: TestBroker.logger).replay(history).replays)
        await harness.shutdown()
    }
}
