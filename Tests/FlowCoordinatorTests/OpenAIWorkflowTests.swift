import FlowCoordinator
import FlowContracts
import FlowCore
import FlowDeadLetters
import FlowOpenAI
import FlowOpenAIActivities
import FlowTesting
import Foundation
import Testing

/// A workflow that asks the OpenAI actor for a document's analysis.
struct AnalysisWorkflow: Workflow {
    static let name = "analysis"

    func run(context: WorkflowContext, input: AnalyzeDocumentContent.Input) async throws -> AnalyzeDocumentContent.Analysis {
        try await context.execute(AnalyzeDocumentContent.self, input).analysis
    }
}

@Suite("a workflow waiting on the OpenAI actor")
struct OpenAIWorkflowTests {
    @Test("without OPENAI_API_KEY the step parks in the dead-letter queue; with the key set and the message replayed the workflow finishes")
    func keyThenReplay() async throws {
        let server = try await FakeOpenAIServer(requiredKey: "sk-set-later")
        var registry = WorkflowRegistry()
        registry.register(AnalysisWorkflow())
        // As deployed against OpenAI, with no key.
        let keyless = try OpenAIClient(configuration: OpenAIConfiguration(apiKey: nil, baseURL: "https://api.openai.com/v1"), logger: TestBroker.logger)
        let harness = try await CoordinatorHarness(workflows: registry, activities: OpenAIActivities.registry(client: keyless), queue: .openai)
        let input = AnalyzeDocumentContent.Input(documentID: "d1", text: "The board approved the budget; hiring is at risk.")
        try await harness.coordinator.start(workflow: AnalysisWorkflow.name, id: "needs-key", input: try JSONText(encoding: input), recipient: nil)
        let parked = try await harness.waitFor("needs-key", [.parked, .completed, .failed])
        #expect(parked.status == .parked)
        #expect(parked.parkedReason?.contains("MissingAPIKey") == true)
        #expect(server.received.isEmpty)

        // The operator sets the key and restarts the worker, then replays.
        var withKey = OpenAIConfiguration(apiKey: "sk-set-later", baseURL: server.baseURL, defaultModel: "gpt-4o-mini")
        withKey.cacheFolder = nil
        try await harness.replaceWorker(with: OpenAIActivities.registry(client: try OpenAIClient(configuration: withKey, logger: TestBroker.logger)))
        let report = try await DeadLetterQueue(transport: harness.requester, names: harness.names, audit: nil)
            .replay(DeadLetterFilter(activity: AnalyzeDocumentContent.name, workflowID: "needs-key"), operatorName: "test")
        #expect(report.replayed.count == 1)
        let finished = try await harness.waitFor("needs-key", [.completed, .failed, .cancelled])
        #expect(finished.status == .completed)
        let analysis = try #require(finished.output).decode(AnalyzeDocumentContent.Analysis.self)
        #expect(!analysis.summary.isEmpty)
        #expect(server.received.count == 1)
        await harness.shutdown()
        await server.stop()
    }
}
