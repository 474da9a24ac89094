import FlowContracts
import FlowCore
import FlowOpenAI
@testable import FlowOpenAIActivities
import FlowRuntime
import FlowTesting
import Foundation
import Testing

/// How the two retry levels combine: the worker's attempts (through the broker's delay
/// tiers) and the client's HTTP retries inside each attempt, within its deadline. On the
/// in-memory transport, against the loopback OpenAI server.
@Suite("the OpenAI actor's retries on the in-memory transport")
struct InMemoryOpenAIRetryTests {
    @Test("a step whose calls always fail with 500 makes at most attempts × (client retries + 1) calls, then fails for good")
    func boundedCalls() async throws {
        let server = try await FakeOpenAIServer()
        server.script(.serverError, .serverError, .serverError, .serverError, .serverError, .serverError, .serverError, .serverError, .serverError, .serverError, .serverError, .serverError)
        let client = try OpenAIClient(configuration: configuration(server), logger: TestBroker.logger)
        let harness = try await TestWorkerHarness(queue: .openai, transports: .inMemory(InMemoryBroker())) { _, _, _ in OpenAIActivities.registry(client: client) }
        try await harness.send(AnalyzeDocumentContent.name, input: #"{"document_id": "d", "text": "short"}"#, messageID: "always-500", queue: .openai)
        let reply = try await harness.finalReply(to: "always-500", timeout: .seconds(120))
        #expect(reply.status == .failed)
        #expect(reply.attempt == Int64(AnalyzeDocumentContent.retryPolicy.maximumAttempts))
        #expect(reply.error?.type == "ServerError")
        let bound = AnalyzeDocumentContent.retryPolicy.maximumAttempts * (OpenAIConfiguration(apiKey: nil).maximumRetries + 1)
        #expect(bound == 9, "the defaults keep a failing step to nine calls")
        #expect(server.received.count == bound)
        await harness.shutdown()
        await server.stop()
    }

    @Test("the client does not start a retry whose wait would pass the attempt's deadline")
    func retriesStayWithinTheDeadline() async throws {
        let server = try await FakeOpenAIServer()
        server.script(.tooManyRequests(retryAfterSeconds: 30), .serverError)
        let client = try OpenAIClient(configuration: configuration(server), logger: TestBroker.logger)
        let failure = try await #require(throws: OpenAIError.self) {
            try await client.chat(chatRequest(), useCache: false, deadline: .now + .seconds(5))
        }
        // Told by the server's count and the reason rather than by a duration, which a loaded
        // machine stretches: waited out, the 30 s would have ended in a second call (a 500).
        #expect(server.received.count == 1, "it waited out the server's 30 s and called again")
        #expect(failure.retryable, "the worker's next attempt may still succeed")
        #expect(failure.code == .rateLimited)
        #expect(failure.message.contains("waiting 30.0 seconds for another would pass the attempt's deadline"), "\(failure.message)")
        await server.stop()
    }
}

@Suite("the OpenAI client's errors at the activity boundary")
struct OpenAIErrorMappingTests {
    @Test("every client error maps to a kind of the failure catalogue, keeping its message and whether it retries")
    func everyCodeIsCatalogued() throws {
        let source = try String(contentsOf: Repository.file("Sources/FlowCore/Activities/ActivityFailure+Kind.swift"), encoding: .utf8)
        for code in OpenAIError.Code.allCases {
            #expect(source.contains(#"Kind(rawValue: "\#(code.rawValue)")"#), "\(code.rawValue) is not in the catalogue")
        }
        let failure = ActivityFailure(OpenAIError(.rateLimited, "slow down", retryable: true))
        #expect(failure.kind == .rateLimited && failure.retryable && failure.message == "slow down")
        #expect(!ActivityFailure(OpenAIError(.unauthorized, "bad key", retryable: false)).retryable)
    }
}
