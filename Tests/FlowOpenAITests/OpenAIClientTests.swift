import FlowCore
import FlowObservability
@testable import FlowOpenAI
import FlowTesting
import Foundation
import Logging
import Synchronization
import Testing

/// Collects every log line, message and metadata, to look for secrets.
final class CapturedLogs: Sendable {
    let lines = Mutex<[String]>([])

    var logger: Logger {
        var logger = Logger(label: "flow.openai.tests") { _ in CapturingHandler(logs: self) }
        logger.logLevel = .trace
        return logger
    }

    struct CapturingHandler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
            logs.lines.withLock { $0.append("\(event.level) \(event.message) \(all)") }
        }
    }
}

final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

func configuration(_ server: FakeOpenAIServer, key: String? = "sk-test-key", cache: URL? = nil, limits: RateLimiter.Limits = .init()) -> OpenAIConfiguration {
    var configuration = OpenAIConfiguration(
        apiKey: key, baseURL: server.baseURL, defaultModel: "test-model", limits: limits, cacheFolder: cache,
        prices: ["test-model": ModelPrice(inputPerMillion: 1.0, outputPerMillion: 2.0)]
    )
    configuration.initialBackoff = .milliseconds(20)
    configuration.maximumBackoff = .milliseconds(200)
    return configuration
}

let analysisSchema = try! JSONText(validating: #"{"type":"object","additionalProperties":false,"required":["summary","themes"],"properties":{"summary":{"type":"string"},"themes":{"type":"array","items":{"type":"string"}}}}"#)

func chatRequest(_ text: String = "Summarise: the quarterly report shows growth.") -> ChatRequest {
    ChatRequest(model: "test-model", messages: [.system("You summarise."), .user(text)], responseFormat: try! ChatRequest.jsonSchema(name: "analysis", schema: analysisSchema))
}

@Suite("the OpenAI client against an OpenAI-compatible server on loopback")
struct OpenAIClientTests {
    @Test("a chat returns the server's answer, and a streamed answer equals the unstreamed one")
    func streamedEqualsUnstreamed() async throws {
        let server = try await FakeOpenAIServer()
        let client = try OpenAIClient(configuration: configuration(server), logger: TestBroker.logger)
        let plain = try await client.chat(chatRequest(), useCache: false)
        let streamed = try await client.chat(chatRequest(), useCache: false, stream: true)
        #expect(plain.response.text.contains(#""summary""#))
        #expect(streamed.response.text == plain.response.text)
        #expect(streamed.response.usage == plain.response.usage)
        #expect(streamed.response.choices.first?.finishReason == "stop")
        let received = server.received
        #expect(received.count == 2)
        #expect(received.first?.headers["authorization"] == "Bearer sk-test-key")
        #expect(received.last?.body["stream"] as? Double == 1 || received.last?.body["stream"] as? String == "true" || (received.last?.body["stream"] != nil))
        await server.stop()
    }

    @Test("429 with Retry-After is waited out; 500, a reset connection and malformed JSON are retried; then the answer comes")
    func retries() async throws {
        let server = try await FakeOpenAIServer()
        server.script(.tooManyRequests(retryAfterSeconds: 1), .serverError, .resetConnection, .malformedJSON)
        var settings = configuration(server)
        settings.maximumRetries = 4
        let client = try OpenAIClient(configuration: settings, logger: TestBroker.logger)
        let result = try await client.chat(chatRequest(), useCache: false)
        // A connection reset on a reused connection is retried by libcurl itself, at once,
        // on a new connection; our own retry counts it only when libcurl gives up.
        let arrivals = server.received.map(\.at)
        #expect(arrivals.count == 5, "four failures, then the answer")
        #expect((4...5).contains(result.calls))
        #expect(client.retryCount == result.calls - 1)
        #expect(result.response.text.contains(#""summary""#))
        #expect(arrivals[1] - arrivals[0] >= .milliseconds(950), "the server said to wait a second after the 429")
        await server.stop()
    }

    @Test("an answer slower than the request timeout is abandoned and the call retried")
    func slowAnswer() async throws {
        let server = try await FakeOpenAIServer()
        server.script(.slow(.seconds(3)))
        var settings = configuration(server)
        settings.requestTimeout = .milliseconds(400)
        let client = try OpenAIClient(configuration: settings, logger: TestBroker.logger)
        let result = try await client.chat(chatRequest(), useCache: false)
        #expect(result.calls == 2)
        #expect(client.retryCount == 1)
        #expect(result.response.text.contains(#""summary""#))
        await server.stop()
    }

    @Test("embeddings come back one vector per input, with their usage counted")
    func embeddings() async throws {
        let server = try await FakeOpenAIServer()
        let client = try OpenAIClient(configuration: configuration(server), logger: TestBroker.logger)
        let response = try await client.embeddings(EmbeddingsRequest(model: "test-model", input: ["first text", "second text"]))
        #expect(response.data.map(\.index) == [0, 1])
        #expect(response.data.allSatisfy { !$0.embedding.isEmpty })
        #expect(client.ledger.snapshot()["test-model"]?.promptTokens == response.usage?.promptTokens)
        #expect(server.received.first?.path == "/v1/embeddings")
        await server.stop()
    }

    @Test("when retries run out the call fails retryably with the last error")
    func retriesRunOut() async throws {
        let server = try await FakeOpenAIServer()
        server.script(.serverError, .serverError, .serverError)
        var settings = configuration(server)
        settings.maximumRetries = 2
        let client = try OpenAIClient(configuration: settings, logger: TestBroker.logger)
        let failure = try await #require(throws: OpenAIError.self) { try await client.chat(chatRequest(), useCache: false) }
        #expect(failure.retryable)
        #expect(failure.type == "ServerError")
        #expect(failure.message.contains("gave up after 3 calls"))
        #expect(server.received.count == 3)
        await server.stop()
    }

    @Test("a 401 fails at once, not retried, telling to check OPENAI_API_KEY; the key is in no log line or error")
    func unauthorized() async throws {
        let secret = "sk-wrong-\(UUID().uuidString)"
        let server = try await FakeOpenAIServer(requiredKey: "sk-right")
        server.script(.tooManyRequests(retryAfterSeconds: 0))
        let logs = CapturedLogs()
        let client = try OpenAIClient(configuration: configuration(server, key: secret), logger: logs.logger)
        let failure = try await #require(throws: OpenAIError.self) { try await client.chat(chatRequest(), useCache: false) }
        #expect(!failure.retryable)
        #expect(failure.type == "Unauthorized")
        #expect(failure.message.contains("OPENAI_API_KEY"))
        #expect(server.received.count == 2, "one 429 retried, then the 401, not retried")
        #expect(!failure.message.contains(secret))
        #expect(!logs.lines.withLock { $0 }.isEmpty, "the retry should have been logged")
        #expect(logs.lines.withLock { $0 }.allSatisfy { !$0.contains(secret) })
        await server.stop()
    }

    @Test("a cache hit sends no request and costs nothing; opting out calls again")
    func cache() async throws {
        let server = try await FakeOpenAIServer()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-openai-cache-\(UUID().uuidString.prefix(8))")
        let client = try OpenAIClient(configuration: configuration(server, cache: folder), logger: TestBroker.logger)
        let first = try await client.chat(chatRequest())
        let second = try await client.chat(chatRequest())
        #expect(!first.cached)
        #expect(second.cached)
        #expect(second.costUSD == 0)
        #expect(second.response == first.response)
        #expect(server.received.count == 1)
        _ = try await client.chat(chatRequest(), useCache: false)
        #expect(server.received.count == 2)
        _ = try await client.chat(chatRequest("a different question"))
        #expect(server.received.count == 3)
        try? FileManager.default.removeItem(at: folder)
        await server.stop()
    }

    @Test("the client learns the server's limits: an announced RPM caps the configured one, and a 429 takes a tenth off it")
    func learnsLimits() async throws {
        let server = try await FakeOpenAIServer()
        server.announce(requestsPerMinute: 120, tokensPerMinute: 90_000)
        let metrics = FlowMetrics()
        let client = try OpenAIClient(configuration: configuration(server, limits: .init(requests: 600, tokens: 200_000, window: .seconds(60))), metrics: metrics, logger: TestBroker.logger)
        _ = try await client.chat(chatRequest("one"), useCache: false)
        var learned = await client.limiter.effectiveLimits(model: "test-model")
        #expect(learned.requests == 120 && learned.tokens == 90_000, "the server's limits are below the configured ones")
        server.script(.tooManyRequests(retryAfterSeconds: 0))
        let retried = try await client.chat(chatRequest("two"), useCache: false)
        #expect(retried.calls == 2)
        learned = await client.limiter.effectiveLimits(model: "test-model")
        // Cut by a tenth by the 429 (the limit is announced), to 108; then grown by the
        // accepted retry by a twentieth of 120 per second since the first call, a quiet
        // spell counting as at most one second: 108 to 114.
        let afterRefusal = try #require(learned.requests)
        #expect((108...114).contains(afterRefusal), "\(afterRefusal)")
        #expect(PrometheusText(metrics.exposition()).sum("flow_openai_rate_limit_effective", matching: ["gen_ai_request_model": "test-model"]) == Double(afterRefusal))
        await server.stop()
    }

    @Test("costs add up to the reported usage at the table's prices, and a spent daily budget stops further calls")
    func costsAndBudget() async throws {
        let server = try await FakeOpenAIServer()
        let metrics = FlowMetrics()
        let client = try OpenAIClient(configuration: configuration(server), metrics: metrics, logger: TestBroker.logger)
        var expected = 0.0
        var promptTokens = 0
        for index in 0..<3 {
            let result = try await client.chat(chatRequest("question \(index) " + String(repeating: "word ", count: 40 * (index + 1))), useCache: false)
            let usage = try #require(result.response.usage)
            promptTokens += usage.promptTokens
            expected += (Double(usage.promptTokens) * 1.0 + Double(usage.completionTokens) * 2.0) / 1_000_000
            // The ledger computes the same operations in the same order: the same bits.
            #expect(result.costUSD == (Double(usage.promptTokens) * 1.0 + Double(usage.completionTokens) * 2.0) / 1_000_000)
        }
        let totals = try #require(client.ledger.snapshot()["test-model"])
        #expect(totals.costUSD == expected, "summed in the order the calls were made")
        #expect(totals.promptTokens == promptTokens)
        let scraped = PrometheusText(metrics.exposition())
        #expect(scraped.sum("flow_openai_tokens_total", matching: ["gen_ai_request_model": "test-model", "gen_ai_token_type": "input"]) == Double(promptTokens))
        #expect(scraped.sum("flow_openai_cost_usd_total", matching: ["gen_ai_request_model": "test-model"]) == expected, "the same sums in the same order")
        #expect(scraped.sum("gen_ai_client_operation_duration_seconds_count", matching: ["gen_ai_request_model": "test-model", "gen_ai_operation_name": "chat"]) == 3)

        var budgeted = configuration(server)
        budgeted.dailyBudgetUSD = 0.000001
        let limited = try OpenAIClient(configuration: budgeted, logger: TestBroker.logger)
        _ = try await limited.chat(chatRequest(String(repeating: "long ", count: 400)), useCache: false)
        let before = server.received.count
        let failure = try await #require(throws: OpenAIError.self) { try await limited.chat(chatRequest(), useCache: false) }
        #expect(failure.type == "BudgetExceeded")
        #expect(!failure.retryable)
        #expect(server.received.count == before, "no call once the budget is spent")
        await server.stop()
    }

    @Test("under load the request rate never exceeds the limit in any window")
    func requestRate() async throws {
        let limiter = RateLimiter(limits: .init(requests: 5, window: .seconds(1)))
        let started = ContinuousClock.now
        // The instants the limiter let the calls go, as its window counted them: what a
        // server sees is these plus each call's own delay on the way, which on a loaded
        // machine can be hundreds of milliseconds and says nothing about the limiter.
        // The server's first answer ends the probe, which would hold the others otherwise.
        let probe = try await limiter.acquire(model: "m", estimatedTokens: 1)
        await limiter.observe(probe, status: 200, headers: [:])
        let admitted = try await withThrowingTaskGroup(of: ContinuousClock.Instant.self) { group in
            for _ in 1..<20 {
                group.addTask { try await limiter.acquire(model: "m", estimatedTokens: 1).admittedAt }
            }
            return try await group.reduce(into: [probe.admittedAt]) { $0.append($1) }.sorted()
        }
        let elapsed = ContinuousClock.now - started
        #expect(admitted.count == 20)
        for index in 0..<(admitted.count - 5) {
            #expect(admitted[index + 5] - admitted[index] >= .seconds(1), "six starts within one window at \(index)")
        }
        // 20 calls at 5 per second need three full windows of waiting. That they wait no
        // longer than the window makes them is RateWindowTests' to show: on a loaded
        // machine any bound on elapsed time could fail.
        #expect(elapsed >= .seconds(3))
    }

    @Test("until a model's server has answered once, one call goes: the others wait for its answer, or for the probe's hold if none comes")
    func probe() async throws {
        let limiter = RateLimiter(limits: .init(requests: 600, window: .seconds(60)))
        let first = try await limiter.acquire(model: "m", estimatedTokens: 1)
        let secondDone = Flag()
        let second = Task {
            defer { secondDone.set() }
            return try await limiter.acquire(model: "m", estimatedTokens: 1)
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(!secondDone.isSet, "600 a minute has room for ten at once; only the probe holds the second call")
        await limiter.observe(first, status: 200, headers: ["x-ratelimit-limit-requests": "120"])
        _ = try await second.value
        #expect(await limiter.effectiveLimits(model: "m").requests == 120, "the probe's answer set the limit")

        // Another model whose server never answers: its second call goes when the hold ends.
        let unanswered = try await limiter.acquire(model: "silent", estimatedTokens: 1)
        let next = try await limiter.acquire(model: "silent", estimatedTokens: 1)
        #expect(next.admittedAt - unanswered.admittedAt >= RateLimiter.probeHold)
    }

    @Test("the token limit holds calls until the window has room, and reported usage corrects the estimate")
    func tokenLimit() async throws {
        // A window far longer than the test: a held call can only go on because of a correction.
        let limiter = RateLimiter(limits: .init(tokens: 1000, window: .seconds(120)))
        let first = try await limiter.acquire(model: "m", estimatedTokens: 600)
        // Answered, so that the probe holds nothing and only the tokens can.
        await limiter.observe(first, status: 200, headers: [:])
        let secondDone = Flag()
        let second = Task {
            defer { secondDone.set() }
            return try await limiter.acquire(model: "m", estimatedTokens: 600)
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(!secondDone.isSet, "600 + 600 estimated tokens exceed 1000: the second call must wait")
        // The first call used far less than estimated: the second fits now.
        await limiter.correct(first, actualTokens: 50)
        let deadline = ContinuousClock.now + .seconds(30)
        while !secondDone.isSet, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(secondDone.isSet, "the correction should have let the second call in")
        _ = try await second.value

        let thirdDone = Flag()
        let third = Task {
            defer { thirdDone.set() }
            return try await limiter.acquire(model: "m", estimatedTokens: 600)
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(!thirdDone.isSet, "50 + 600 + 600 exceed 1000: the third call must wait")
        third.cancel()
        await #expect(throws: CancellationError.self) { try await third.value }
    }

    @Test("Retry-After and the x-ratelimit reset headers say how long to wait", arguments: [
        (["retry-after": "2"], 2000),
        (["retry-after-ms": "150"], 150),
        (["x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"], 90000),
        (["x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "250ms"], 250),
        (["x-ratelimit-remaining-tokens": "12", "x-ratelimit-reset-tokens": "250ms"], -1),
    ])
    func serverWait(headers: [String: String], milliseconds: Int) {
        let wait = ServerWait.duration(from: headers)
        if milliseconds < 0 {
            #expect(wait == nil)
        } else {
            #expect(wait == .milliseconds(milliseconds))
        }
    }
}
