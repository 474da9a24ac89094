import FlowAMQP
import FlowContracts
import FlowCore
import FlowOpenAI
import FlowOpenAIActivities
import FlowRuntime
import FlowTesting
import Foundation
import Testing

@Suite("the OpenAI actor's activities through openai-queue", .serialized)
struct OpenAIActivityTests {
    func harness(_ server: FakeOpenAIServer, configure: (inout OpenAIConfiguration) -> Void = { _ in }) async throws -> (TestWorkerHarness, OpenAIClient) {
        var settings = configuration(server)
        configure(&settings)
        let client = try OpenAIClient(configuration: settings, logger: TestBroker.logger)
        let harness = try await TestWorkerHarness(queue: .openai, concurrency: 4) { _, _, _ in OpenAIActivities.registry(client: client) }
        return (harness, client)
    }

    func run<Output: Decodable>(_ harness: TestWorkerHarness, _ activity: String, _ input: String, as type: Output.Type) async throws -> Output {
        let id = UUID().uuidString
        try await harness.send(activity, input: input, messageID: id, queue: .openai)
        let reply = try await harness.finalReply(to: id, timeout: .seconds(60))
        #expect(reply.status == .completed, "\(activity) failed: \(String(describing: reply.error))")
        return try #require(reply.output).decode(type)
    }

    @Test("analyze_document_content returns the documented analysis, in one call or map-reduce over parts")
    func analyze() async throws {
        let server = try await FakeOpenAIServer()
        let (harness, _) = try await harness(server)
        let short = try await run(harness, "analyze_document_content", #"{"document_id": "d1", "text": "The board approved the budget. Hiring is at risk."}"#, as: AnalyzeDocumentContent.Output.self)
        #expect(short.parts == 1)
        #expect(short.promptVersions == ["analyze_document@1"])
        #expect(!short.analysis.summary.isEmpty)
        #expect(short.analysis.risks.allSatisfy { ["low", "medium", "high"].contains($0.severity) })
        #expect(short.usage.calls == 1)
        #expect(short.usage.promptTokens > 0)
        #expect(short.usage.costUSD > 0)

        let paragraph = String(repeating: "Revenue grew in the quarter while costs rose. ", count: 10)
        let long = (1...6).map { "Section \($0). \(paragraph)" }.joined(separator: "\n\n")
        let input = try JSONText(encoding: AnalyzeDocumentContent.Input(documentID: "d2", text: long, maxPartCharacters: 1000))
        let mapped = try await run(harness, "analyze_document_content", input.text, as: AnalyzeDocumentContent.Output.self)
        #expect(mapped.parts > 1)
        #expect(mapped.usage.calls == mapped.parts + 1, "one call per part and one to combine them")
        #expect(Set(mapped.promptVersions) == ["analyze_chunk@1", "analyze_combine@1"])
        await harness.shutdown()
        await server.stop()
    }

    @Test("research_and_synthesize, catchball_exchange and synthesize_wisdom answer in their schemas")
    func otherActivities() async throws {
        let server = try await FakeOpenAIServer()
        let (harness, _) = try await harness(server)
        let research = try await run(
            harness, "research_and_synthesize",
            #"{"topic": "remote work", "sources": [{"title": "survey", "text": "Most staff prefer two office days."}], "max_questions": 2}"#,
            as: ResearchAndSynthesize.Output.self
        )
        #expect(research.answers.count == 2)
        #expect(!research.synthesis.isEmpty)
        #expect(research.usage.calls == 4, "plan, two answers, synthesis")
        #expect(research.promptVersions == ["research_questions@1", "research_answer@1", "research_synthesis@1"])

        let first = try await run(harness, "catchball_exchange", #"{"topic": "a four-day week"}"#, as: CatchballExchange.Output.self)
        #expect(first.round == 1)
        #expect(first.conversation.map(\.kind) == ["proposal", "feedback", "revision"])
        let secondInput = try JSONText(encoding: ["topic": try JSONText(encoding: "a four-day week"), "conversation": try JSONText(encoding: first.conversation)])
        let second = try await run(harness, "catchball_exchange", secondInput.text, as: CatchballExchange.Output.self)
        #expect(second.round == 2)
        #expect(second.proposal == first.revisedProposal, "round two starts from round one's revision")
        #expect(second.conversation.count == 5)

        let wisdom = try await run(
            harness, "synthesize_wisdom",
            #"{"insights": [{"source": "retro-1", "text": "Small releases broke less."}, {"source": "retro-2", "text": "Big-bang launches slipped."}], "max_principles": 2}"#,
            as: SynthesizeWisdom.Output.self
        )
        #expect(!wisdom.principles.isEmpty)
        #expect(wisdom.principles.allSatisfy { !$0.evidence.isEmpty })
        await harness.shutdown()
        await server.stop()
    }

    @Test("without OPENAI_API_KEY an activity fails at once, non-retryably, saying how to set it, and waits in the dead-letter queue")
    func missingKey() async throws {
        let server = try await FakeOpenAIServer()
        var settings = OpenAIConfiguration(apiKey: nil, baseURL: "https://api.openai.com/v1")
        settings.cacheFolder = nil
        let client = try OpenAIClient(configuration: settings, logger: TestBroker.logger)
        let harness = try await TestWorkerHarness(queue: .openai, concurrency: 1) { _, _, _ in OpenAIActivities.registry(client: client) }
        let id = UUID().uuidString
        try await harness.send("analyze_document_content", input: #"{"document_id": "d3", "text": "hello"}"#, messageID: id, queue: .openai)
        let reply = try await harness.finalReply(to: id)
        #expect(reply.status == .failed)
        #expect(reply.error?.type == "MissingAPIKey")
        #expect(reply.error?.retryable == false)
        #expect(reply.error?.message.contains("OPENAI_API_KEY") == true)
        #expect(reply.error?.message.contains("flow dlq replay") == true)
        let letters = try await harness.deadLetters(count: 1)
        #expect(letters.first?.properties.messageID == id)
        await harness.shutdown()
        await server.stop()
    }
}
