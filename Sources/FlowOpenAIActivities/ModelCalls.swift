import FlowContracts
import FlowCore
import FlowOpenAI
import FlowRuntime
import Foundation
import Synchronization

/// The calls one activity run makes: each asks for JSON that follows its prompt's schema,
/// and their usage and cost add up here for the activity's reply.
final class ModelCalls: Sendable {
    let client: OpenAIClient
    let model: String
    let useCache: Bool
    /// The activity attempt's deadline: the client retries a call only while it leaves time.
    let deadline: ContinuousClock.Instant?
    private let tally = Mutex(ModelUsage())
    private let versions = Mutex<[String]>([])

    /// Whose capacity the calls use, and how urgent they are (``RateLimiter``).
    let rateKey: String?
    let priority: ActivityPriority

    init(client: OpenAIClient, model: String?, useCache: Bool?, deadline: ContinuousClock.Instant? = nil, rateKey: String? = nil, priority: ActivityPriority = .normal) {
        self.client = client
        self.rateKey = rateKey
        self.priority = priority
        self.deadline = deadline
        self.model = model ?? client.configuration.defaultModel
        self.useCache = useCache ?? true
    }

    /// Asks the model with `prompt` and decodes its JSON answer.
    func ask<Answer: Decodable>(_ prompt: Prompt, _ values: [String: String], as type: Answer.Type) async throws -> Answer {
        let request = ChatRequest(
            model: model, messages: [.system(prompt.system), .user(try prompt.user(values))], temperature: 0.2,
            responseFormat: try ChatRequest.jsonSchema(name: prompt.schemaName, schema: prompt.schema)
        )
        let result: OpenAIClient.ChatResult
        do {
            result = try await client.chat(request, useCache: useCache, deadline: deadline, rateKey: rateKey, priority: priority)
        } catch let error as OpenAIError {
            throw ActivityFailure(error)
        }
        let usage = result.response.usage ?? TokenUsage(promptTokens: 0, completionTokens: 0)
        tally.withLock { tally in
            tally.calls += 1
            if result.cached { tally.cachedCalls += 1 } else {
                tally.promptTokens += usage.promptTokens
                tally.completionTokens += usage.completionTokens
                tally.costUSD += result.costUSD
            }
        }
        versions.withLock { if !$0.contains(prompt.version) { $0.append(prompt.version) } }
        do {
            return try FlowJSON.decode(Answer.self, from: result.response.text)
        } catch {
            throw ActivityFailure.retryable(
                .unexpectedAnswer,
                "\(model) answered prompt \(prompt.version) with text that does not follow schema \(prompt.schemaName): \(error). The start of the answer: \(result.response.text.prefix(200))"
            )
        }
    }

    var usage: ModelUsage { tally.withLock { $0 } }
    var promptVersions: [String] { versions.withLock { $0 } }
}

extension ModelCalls {
    /// The calls of an activity run: its input's `rate_key` over the request's header.
    convenience init(client: OpenAIClient, model: String?, useCache: Bool?, rateKey: String?, context: ActivityContext) {
        self.init(client: client, model: model, useCache: useCache, deadline: context.deadline, rateKey: rateKey ?? context.rateKey, priority: context.priority)
    }
}

extension Encodable {
    /// The value as pretty JSON, for a prompt.
    var promptJSON: String {
        (try? FlowJSON.encodeText(self, pretty: true)) ?? "null"
    }
}

extension ActivityFailure {
    /// The OpenAI client's error as the failure catalogue names it: the boundary between the
    /// client and the actor's activities, and the one place the mapping happens.
    init(_ error: OpenAIError) {
        let kind = ActivityFailure.Kind(rawValue: error.type)
        self = error.retryable ? .retryable(kind, error.message) : .nonRetryable(kind, error.message)
    }
}
