import FlowCore
import FlowObservability
import FlowHTTP
import Foundation
import Logging
import Metrics
import Synchronization
import Tracing

/// Where and how the OpenAI actor calls an OpenAI-compatible server.
public struct OpenAIConfiguration: Sendable {
    /// Never logged, never in an error, a reply or a metric.
    public var apiKey: String?
    /// `https://api.openai.com/v1`, or any server that speaks the API (Azure-style URLs,
    /// Ollama, vLLM, llama.cpp's server).
    public var baseURL: String
    public var organization: String?
    public var project: String?
    /// The chat model when a request names none.
    public var defaultModel: String
    public var connectTimeout: Duration = .seconds(10)
    public var requestTimeout: Duration = .seconds(120)
    /// Retries of 429, 5xx, timeouts and dropped connections inside one activity attempt,
    /// and only while the attempt's deadline leaves time for them. With the OpenAI
    /// activities' 3 attempts a step makes at most 3 × (2 + 1) = 9 calls (docs/openai.md).
    public var maximumRetries = 2
    public var initialBackoff: Duration = .milliseconds(500)
    public var maximumBackoff: Duration = .seconds(30)
    public var limits: RateLimiter.Limits
    /// Where responses are cached; nil turns the cache off.
    public var cacheFolder: URL?
    public var cacheTimeToLive: Duration = .seconds(24 * 3600)
    public var prices: [String: ModelPrice]
    public var dailyBudgetUSD: Double?
    /// Where today's spend is kept across restarts.
    public var spendFile: URL?

    public init(
        apiKey: String?, baseURL: String = "https://api.openai.com/v1", organization: String? = nil, project: String? = nil,
        defaultModel: String = "gpt-4o-mini", limits: RateLimiter.Limits = .init(), cacheFolder: URL? = nil,
        prices: [String: ModelPrice] = ModelPrice.defaults, dailyBudgetUSD: Double? = nil, spendFile: URL? = nil
    ) {
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.organization = organization
        self.project = project
        self.defaultModel = defaultModel
        self.limits = limits
        self.cacheFolder = cacheFolder
        self.prices = prices
        self.dailyBudgetUSD = dailyBudgetUSD
        self.spendFile = spendFile
    }

    /// Whether the server needs a key: OpenAI's and Azure's do; a local server may not.
    public var requiresKey: Bool {
        let host = URL(string: baseURL)?.host ?? ""
        return host.hasSuffix("openai.com") || host.hasSuffix("openai.azure.com")
    }

    /// The configuration from the environment, with the cache and spend file in `dataFolder`:
    /// `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORGANIZATION`, `OPENAI_PROJECT`,
    /// `FLOW_OPENAI_MODEL`, `FLOW_OPENAI_RPM`, `FLOW_OPENAI_TPM`, `FLOW_OPENAI_MAX_RETRIES`,
    /// `FLOW_OPENAI_TIMEOUT_SECONDS`, `FLOW_OPENAI_CACHE_TTL_SECONDS` (0 turns the cache off),
    /// `FLOW_OPENAI_PRICES` (a JSON file), `FLOW_OPENAI_DAILY_BUDGET_USD`,
    /// `FLOW_OPENAI_RATE_KEYS` (JSON: rate key -> its rpm, tpm and weight). The limits are
    /// the deployment's: every copy of the actor keeps to its share.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment, dataFolder: URL) throws -> OpenAIConfiguration {
        func number(_ name: String) throws -> Double? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Double(text), value >= 0 else { throw OpenAIError.nonRetryable(.invalidConfiguration, "\(name) must be a number of 0 or more, got '\(text)'") }
            return value
        }
        var prices = ModelPrice.defaults
        if let path = environment["FLOW_OPENAI_PRICES"], !path.isEmpty {
            do {
                prices.merge(try FlowJSON.decoder.decode([String: ModelPrice].self, from: Data(contentsOf: URL(fileURLWithPath: path)))) { _, new in new }
            } catch {
                throw OpenAIError.nonRetryable(.invalidConfiguration, "FLOW_OPENAI_PRICES (\(path)) must be a JSON object of model -> {\"input_per_million\": x, \"output_per_million\": y}: \(error)")
            }
        }
        var keys: [String: RateLimiter.KeyLimits] = [:]
        if let text = environment["FLOW_OPENAI_RATE_KEYS"], !text.isEmpty {
            struct KeySetting: Decodable {
                var rpm: Int?
                var tpm: Int?
                var weight: Int?
            }
            do {
                let settings = try FlowJSON.decoder.decode([String: KeySetting].self, from: Data(text.utf8))
                for (key, setting) in settings {
                    guard (setting.weight ?? 1) >= 1, (setting.rpm ?? 1) >= 1, (setting.tpm ?? 1) >= 1 else {
                        throw OpenAIError.nonRetryable(.invalidConfiguration, "rate key '\(key)': weight, rpm and tpm must be 1 or more")
                    }
                    keys[key] = RateLimiter.KeyLimits(requests: setting.rpm, tokens: setting.tpm, weight: setting.weight ?? 1)
                }
            } catch let error as OpenAIError {
                throw OpenAIError.nonRetryable(.invalidConfiguration, "FLOW_OPENAI_RATE_KEYS: \(error.message)")
            } catch {
                throw OpenAIError.nonRetryable(
                    .invalidConfiguration, #"FLOW_OPENAI_RATE_KEYS must be a JSON object of rate key -> {"rpm": n, "tpm": n, "weight": n} (each optional), got '\#(text.prefix(200))': \#(error)"#
                )
            }
        }
        let openai = dataFolder.appendingPathComponent("openai")
        let cacheTTL = try number("FLOW_OPENAI_CACHE_TTL_SECONDS") ?? 86_400
        var configuration = OpenAIConfiguration(
            apiKey: environment["OPENAI_API_KEY"], baseURL: environment["OPENAI_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://api.openai.com/v1",
            organization: environment["OPENAI_ORGANIZATION"] ?? environment["OPENAI_ORG_ID"], project: environment["OPENAI_PROJECT"],
            defaultModel: environment["FLOW_OPENAI_MODEL"].flatMap { $0.isEmpty ? nil : $0 } ?? "gpt-4o-mini",
            limits: .init(requests: try number("FLOW_OPENAI_RPM").map { Int($0) } ?? 500, tokens: try number("FLOW_OPENAI_TPM").map { Int($0) } ?? 200_000, keys: keys),
            cacheFolder: cacheTTL > 0 ? openai.appendingPathComponent("cache") : nil, prices: prices,
            dailyBudgetUSD: try number("FLOW_OPENAI_DAILY_BUDGET_USD"), spendFile: openai.appendingPathComponent("spend.sqlite")
        )
        configuration.cacheTimeToLive = .seconds(cacheTTL)
        if let retries = try number("FLOW_OPENAI_MAX_RETRIES") { configuration.maximumRetries = Int(retries) }
        if let timeout = try number("FLOW_OPENAI_TIMEOUT_SECONDS") { configuration.requestTimeout = .milliseconds(Int64(timeout * 1000)) }
        return configuration
    }
}

/// A client of the OpenAI API on libcurl, shared by all activities of a worker process:
/// one rate limiter, one cache, one cost ledger.
public final class OpenAIClient: Sendable {
    public let configuration: OpenAIConfiguration
    public let limiter: RateLimiter
    public let ledger: CostLedger
    private let http = CurlHTTPClient()
    private let cache: ResponseCache?
    private let logger: Logger
    private let retries = Mutex(0)
    private let operationDuration: MetricFamily<Metrics.Timer>
    private let rateLimitWait: MetricFamily<Metrics.Timer>
    private let retryCounter: MetricFamily<Counter>
    private let effectiveLimit: MetricFamily<Gauge>

    /// A client whose calls, tokens and costs are recorded into `metrics`, its spend booked
    /// in `spendStore` (shared by copies on several hosts) or else in the configuration's
    /// spend file. Throws when the spend file cannot be opened.
    public init(configuration: OpenAIConfiguration, spendStore: (any SpendStore)? = nil, metrics: FlowMetrics = FlowMetrics(), logger: Logger) throws {
        self.configuration = configuration
        self.limiter = RateLimiter(limits: configuration.limits)
        if let spendStore {
            self.ledger = CostLedger(prices: configuration.prices, dailyBudgetUSD: configuration.dailyBudgetUSD, store: spendStore, metrics: metrics)
        } else {
            do {
                self.ledger = try CostLedger(prices: configuration.prices, dailyBudgetUSD: configuration.dailyBudgetUSD, spendFile: configuration.spendFile, metrics: metrics)
            } catch {
                throw OpenAIError.nonRetryable(
                    .invalidConfiguration, "cannot open the spend book \(configuration.spendFile?.path ?? "in memory"): \(error). Check that the data folder is writable"
                )
            }
        }
        operationDuration = metrics.timer(FlowMetricCatalogue.operationDuration)
        rateLimitWait = metrics.timer(FlowMetricCatalogue.rateLimitWait)
        retryCounter = metrics.counter(FlowMetricCatalogue.openAIRetries)
        effectiveLimit = metrics.gauge(FlowMetricCatalogue.rateLimitEffective)
        self.cache = configuration.cacheFolder.map { ResponseCache(folder: $0, timeToLive: configuration.cacheTimeToLive) }
        self.logger = logger
    }

    /// Retries made so far (429, 5xx, timeouts, dropped connections).
    public var retryCount: Int { retries.withLock { $0 } }

    /// A chat's answer and what it cost.
    public struct ChatResult: Sendable {
        public var response: ChatResponse
        public var cached: Bool
        public var costUSD: Double
        /// HTTP calls made for it: 0 for a cache hit.
        public var calls: Int
    }

    /// Sends a chat, streamed or not, through the cache, the budget, the limiter and the
    /// retry rules. A streamed answer is assembled into the same response shape.
    ///
    /// `deadline` is the activity attempt's: a retry whose wait would end after it is not
    /// made, so the attempt fails in time for the worker's own retry.
    /// `rateKey` and `priority` say whose capacity the call uses and how urgent it is
    /// (``RateLimiter``).
    public func chat(
        _ request: ChatRequest, useCache: Bool = true, stream: Bool = false, deadline: ContinuousClock.Instant? = nil, rateKey: String? = nil,
        priority: ActivityPriority = .normal
    ) async throws -> ChatResult {
        let key = useCache && cache != nil ? try ResponseCache.key(for: request) : nil
        if let key, let hit = cache?.lookup(key) {
            await ledger.record(model: hit.model, usage: hit.usage ?? TokenUsage(promptTokens: 0, completionTokens: 0), cached: true)
            return ChatResult(response: hit, cached: true, costUSD: 0, calls: 0)
        }
        var wire = request
        if stream {
            wire.stream = true
            wire.streamOptions = .init(includeUsage: true)
        }
        let promptEstimate = request.messages.reduce(0) { $0 + ($1.content?.utf8.count ?? 0) } / 4
        let estimate = Estimate(promptTokens: promptEstimate, completionTokens: request.maxTokens ?? 512, mostCompletionTokens: request.maxTokens ?? Self.unboundedCompletionTokens)
        let events = stream ? ServerSentEvents() : nil
        let (response, calls, booking) = try await post(
            path: "/chat/completions", body: try FlowJSON.encode(wire), model: request.model, estimate: estimate, events: events, deadline: deadline, rateKey: rateKey, priority: priority
        ) { http in
            if let events { return try events.assembledResponse() }
            return try FlowJSON.decoder.decode(ChatResponse.self, from: http.body)
        }
        let usage = response.usage ?? TokenUsage(promptTokens: 0, completionTokens: 0)
        let cost = await ledger.record(model: response.model, usage: usage, cached: false, booking: booking)
        if let key { cache?.store(response, key: key) }
        return ChatResult(response: response, cached: false, costUSD: cost, calls: calls)
    }

    public func embeddings(
        _ request: EmbeddingsRequest, deadline: ContinuousClock.Instant? = nil, rateKey: String? = nil, priority: ActivityPriority = .normal
    ) async throws -> EmbeddingsResponse {
        let tokens = request.input.reduce(0) { $0 + $1.utf8.count } / 4
        let (response, _, booking) = try await post(
            path: "/embeddings", body: try FlowJSON.encode(request), model: request.model, estimate: Estimate(promptTokens: tokens, completionTokens: 0, mostCompletionTokens: 0),
            events: nil, deadline: deadline, rateKey: rateKey, priority: priority
        ) { http in
            try FlowJSON.decoder.decode(EmbeddingsResponse.self, from: http.body)
        }
        await ledger.record(model: response.model, usage: response.usage ?? TokenUsage(promptTokens: 0, completionTokens: 0), cached: false, booking: booking)
        return response
    }

    /// What a call is expected to use: `completionTokens` for the rate limiter's estimate,
    /// `mostCompletionTokens` for the spend booked before it is sent, which must not be
    /// below what the call can cost.
    struct Estimate {
        var promptTokens: Int
        var completionTokens: Int
        var mostCompletionTokens: Int
    }

    /// The completion tokens booked for a chat that sets no `max_tokens`.
    static let unboundedCompletionTokens = 4096

    /// One API call with the retry rules: 429, 5xx, timeouts, dropped connections and
    /// unreadable answers are retried with the shared ``Backoff`` (or as long as the server
    /// says in `Retry-After`), up to ``OpenAIConfiguration/maximumRetries`` and within
    /// `deadline`; other errors fail at once.
    private func post<Value>(
        path: String, body: Data, model: String, estimate: Estimate, events: ServerSentEvents?, deadline: ContinuousClock.Instant?, rateKey: String?,
        priority: ActivityPriority, decode: (HTTPResponse) throws -> Value
    ) async throws -> (Value, Int, CostLedger.Booking) where Value: Sendable {
        let estimatedTokens = estimate.promptTokens + estimate.completionTokens
        try await ledger.checkBudget()
        if configuration.requiresKey, configuration.apiKey == nil {
            throw OpenAIError.nonRetryable(
                .missingAPIKey,
                "OPENAI_API_KEY is not set for `flow worker openai` (calls go to \(configuration.baseURL)): set it (or OPENAI_BASE_URL for a server that needs no key), restart the worker, then replay the message with `flow dlq replay`"
            )
        }
        var headers = [("Content-Type", "application/json"), ("Accept", events == nil ? "application/json" : "text/event-stream")]
        if let key = configuration.apiKey { headers.append(("Authorization", "Bearer \(key)")) }
        if let organization = configuration.organization { headers.append(("OpenAI-Organization", organization)) }
        if let project = configuration.project { headers.append(("OpenAI-Project", project)) }
        let url = configuration.baseURL + path
        let operation = path.hasSuffix("/embeddings") ? "embeddings" : "chat"
        let began = ContinuousClock.now
        defer { operationDuration(model, operation).record(ContinuousClock.now - began) }

        var attempt = 0
        while true {
            attempt += 1
            let waitBegan = ContinuousClock.now
            let permit = try await limiter.acquire(model: model, estimatedTokens: estimatedTokens, rateKey: rateKey, priority: priority)
            rateLimitWait(model).record(ContinuousClock.now - waitBegan)
            // Booked after the wait, so that a call held by the limiter holds no spend; a
            // transport failure leaves the booking at its estimate (the server may have billed).
            let booking = try await ledger.book(model: model, promptTokens: estimate.promptTokens, completionTokens: estimate.mostCompletionTokens)
            var failure: OpenAIError
            var serverWait: Duration?
            do {
                events?.reset()
                var onChunk: (@Sendable (Data) -> Void)?
                if let events { onChunk = { events.receive($0) } }
                let response = try await send(
                    HTTPRequest(
                        method: "POST", url: url, headers: headers, body: body, connectTimeout: configuration.connectTimeout, totalTimeout: configuration.requestTimeout
                    ),
                    operation: operation, model: model, onBodyChunk: onChunk
                )
                let body = events.map { HTTPResponse(status: response.status, headers: response.headers, body: $0.raw) } ?? response
                let observed = await limiter.observe(permit, status: body.status, headers: body.headers)
                serverWait = observed.wait
                if let learned = observed.requestLimit { effectiveLimit(model).record(learned) }
                if (200..<300).contains(body.status) {
                    do {
                        let value = try decode(body)
                        if let usage = Self.usage(of: value) { await limiter.correct(permit, actualTokens: usage.promptTokens + usage.completionTokens) }
                        return (value, attempt, booking)
                    } catch {
                        failure = .retryable(.malformedResponse, "\(configuration.baseURL)\(path) answered \(body.status) with a body that is not the API's shape: \(error)")
                    }
                } else {
                    await ledger.cancel(booking)
                    failure = Self.failure(status: body.status, body: body.body, url: configuration.baseURL + path)
                    if !failure.retryable { throw failure }
                }
            } catch let error as HTTPTransportError {
                failure = .retryable(error.kind == .timedOut ? .timeout : .connectionFailed, error.message)
            }
            guard attempt <= configuration.maximumRetries else {
                throw OpenAIError.retryable(failure.code, "gave up after \(attempt) calls: \(failure.message)")
            }
            let delay = serverWait ?? retryBackoff.delay(afterFailures: attempt)
            if let deadline, ContinuousClock.now + delay >= deadline {
                throw OpenAIError.retryable(
                    failure.code, "gave up after \(attempt) calls: waiting \(delay) for another would pass the attempt's deadline: \(failure.message)"
                )
            }
            retries.withLock { $0 += 1 }
            retryCounter(model, failure.type).increment()
            logger.warning("OpenAI call failed; retrying", metadata: ["error.type": "\(failure.type)", "retry.in": "\(delay)", "attempt": "\(attempt)", "model": "\(model)"])
            try await Task.sleep(for: delay)
        }
    }

    /// One HTTP call, in a client span (OpenTelemetry's GenAI convention) whose context
    /// the request carries in `traceparent`, so the server's trace continues ours.
    private func send(_ request: HTTPRequest, operation: String, model: String, onBodyChunk: (@Sendable (Data) -> Void)?) async throws -> HTTPResponse {
        try await withSpan("\(operation) \(model)", ofKind: .client) { span in
            span.updateAttributes { attributes in
                attributes[FlowSpanAttribute.genAISystem] = "openai"
                attributes[FlowSpanAttribute.genAIOperation] = operation
                attributes[FlowSpanAttribute.requestModel] = model
                attributes[FlowSpanAttribute.httpMethod] = request.method
                attributes[FlowSpanAttribute.url] = request.url
            }
            var request = request
            MessageTracing.inject(span.context, into: &request.headers)
            let response = try await http.send(request, onBodyChunk: onBodyChunk)
            span.attributes[FlowSpanAttribute.httpStatus] = response.status
            if response.status >= 400 {
                span.attributes[FlowSpanAttribute.errorType] = String(response.status)
                span.setStatus(SpanStatus(code: .error))
            }
            return response
        }
    }

    /// Waits between calls: from `initialBackoff` doubling to `maximumBackoff`, spread by
    /// half either way, so the retries of many calls do not arrive together.
    private var retryBackoff: Backoff {
        Backoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff, jitter: 0.5)
    }

    private static func usage(of value: Any) -> TokenUsage? {
        (value as? ChatResponse)?.usage ?? (value as? EmbeddingsResponse)?.usage
    }

    /// The failure for an error status, with the server's own message.
    static func failure(status: Int, body: Data, url: String) -> OpenAIError {
        let detail = try? FlowJSON.decoder.decode(APIErrorBody.self, from: body).error
        let said = detail?.message ?? String(decoding: body.prefix(300), as: UTF8.self)
        switch status {
        case 401:
            return .nonRetryable(.unauthorized, "\(url) refused the API key (401): check OPENAI_API_KEY for `flow worker openai`. The server said: \(said)")
        case 403:
            return .nonRetryable(.forbidden, "\(url) answered 403: the key may not use this model or organisation (OPENAI_ORGANIZATION, OPENAI_PROJECT). The server said: \(said)")
        case 404:
            return .nonRetryable(.notFound, "\(url) answered 404: check the model name and OPENAI_BASE_URL. The server said: \(said)")
        case 400, 413, 422:
            return .nonRetryable(.badRequest, "\(url) refused the request (\(status)): \(said)")
        case 408, 409, 429:
            return .retryable(status == 429 ? .rateLimited : .serverBusy, "\(url) answered \(status): \(said)")
        case 500...599:
            return .retryable(.serverError, "\(url) answered \(status): \(said)")
        default:
            return .nonRetryable(.unexpectedStatus, "\(url) answered \(status): \(said)")
        }
    }
}

/// Collects a streamed chat's server-sent events and assembles the response.
final class ServerSentEvents: Sendable {
    private struct State {
        var raw = Data()
        var pending = Data()
        var id = ""
        var model = ""
        var role = "assistant"
        var content = ""
        var finishReason: String?
        var usage: TokenUsage?
        var done = false
        var malformed: String?
    }

    private let state = Mutex(State())

    func reset() { state.withLock { $0 = State() } }

    var raw: Data { state.withLock { $0.raw } }

    func receive(_ chunk: Data) {
        state.withLock { state in
            state.raw.append(chunk)
            state.pending.append(chunk)
            while let newline = state.pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: state.pending[state.pending.startIndex..<newline], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                state.pending.removeSubrange(state.pending.startIndex...newline)
                guard line.hasPrefix("data:") else { continue }
                let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                if payload == "[DONE]" {
                    state.done = true
                    continue
                }
                guard let event = try? FlowJSON.decode(ChatChunk.self, from: payload) else {
                    state.malformed = String(payload.prefix(200))
                    continue
                }
                state.id = event.id
                state.model = event.model
                if let usage = event.usage { state.usage = usage }
                for choice in event.choices where choice.index == 0 {
                    if let role = choice.delta.role { state.role = role }
                    if let content = choice.delta.content { state.content += content }
                    if let reason = choice.finishReason { state.finishReason = reason }
                }
            }
        }
    }

    func assembledResponse() throws -> ChatResponse {
        try state.withLock { state in
            if let malformed = state.malformed { throw StreamError(message: "an event of the stream is not JSON: \(malformed)") }
            guard state.done else { throw StreamError(message: "the stream ended before [DONE]") }
            return ChatResponse(
                id: state.id, model: state.model,
                choices: [.init(index: 0, message: ChatMessage(role: state.role, content: state.content), finishReason: state.finishReason)],
                usage: state.usage
            )
        }
    }

    struct StreamError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
