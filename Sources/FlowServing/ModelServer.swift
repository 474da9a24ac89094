import FlowCore
import FlowML
import Foundation
import Hummingbird
import Logging
import NIOCore

/// `flow ml serve`: the OpenAI API over our own engine, for a base model and its LoRA
/// adapters, so that the OpenAI actor (or any OpenAI client) can call the organisation's
/// own model. `/v1/chat/completions` and `/v1/completions`, streamed as server-sent events
/// when asked, `/v1/models`, and vLLM's `/v1/load_lora_adapter` and `/v1/unload_lora_adapter`
/// to serve an adapter that finished training without a restart. docs/ml.md, "Serving".
public struct ModelServer: Sendable {
    let catalog: ModelCatalog
    let queue: GenerationQueue
    let maximumBody: Int
    let logger: Logger

    /// - Parameters:
    ///   - capacity: generations that may wait or run before a request is refused with 429.
    ///   - batch: the most sequences one decoding step takes (1: one generation at a time).
    ///   - maximumBody: the largest request body taken, in bytes.
    public init(catalog: ModelCatalog, capacity: Int = 16, batch: Int = 16, maximumBody: Int = 1 << 20, logger: Logger) {
        self.catalog = catalog
        self.queue = GenerationQueue(model: catalog.model, capacity: capacity, batchLimit: batch)
        self.maximumBody = maximumBody
        self.logger = logger
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in "ok\n" }
        // What `flow up` and the other processes' supervisors ask.
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/v1/models") { _, _ in try Self.json(.ok, models()) }
        router.get("/v1/models/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let model = models().data.first(where: { $0.id == id }) else { return Self.error(.unknownModel(id, served: catalog.names)) }
            return try Self.json(.ok, model)
        }
        router.post("/v1/chat/completions") { request, _ in await answer { try await chat(request) } }
        router.post("/v1/completions") { request, _ in await answer { try await complete(request) } }
        router.post("/v1/load_lora_adapter") { request, _ in
            await answer {
                let body = try await decode(AdapterRequest.self, request)
                guard let path = body.loraPath else { throw ServingError.invalid("give lora_path, the adapter's folder", param: "lora_path") }
                try catalog.addAdapter(named: body.loraName, folder: URL(fileURLWithPath: path))
                logger.notice("serving an adapter", metadata: ["model": "\(body.loraName)", "path": "\(path)"])
                return Self.text(.ok, "Success: LoRA adapter '\(body.loraName)' added successfully.")
            }
        }
        router.post("/v1/unload_lora_adapter") { request, _ in
            await answer {
                let body = try await decode(AdapterRequest.self, request)
                guard catalog.removeAdapter(named: body.loraName) else { throw ServingError(status: .notFound, message: "no adapter is named \(body.loraName)", param: "lora_name") }
                return Self.text(.ok, "Success: LoRA adapter '\(body.loraName)' removed successfully.")
            }
        }
        return router
    }

    func models() -> ModelList {
        ModelList(data: catalog.names.map { name in
            ModelList.Model(id: name, created: catalog.created, parent: name == catalog.baseName ? nil : catalog.baseName)
        })
    }

    // MARK: Completions

    /// A request made ready to run: its prompt, how to generate, and how to answer.
    struct Planned: Sendable {
        var job: GenerationQueue.Job
        var stops: [String]
        var model: String
        var stream: Bool
        var includeUsage: Bool
    }

    private func chat(_ request: Request) async throws -> Response {
        let body = try await decode(ChatCompletionRequest.self, request)
        let shape = try body.responseFormat.flatMap { format throws(ServingError) in try JSONShape.parse(responseFormat: format) }
        if let tools = body.tools, tools.arrayValue?.isEmpty == false {
            throw ServingError.invalid("tools are not supported by this server", param: "tools")
        }
        guard !body.messages.isEmpty else { throw ServingError.invalid("messages must hold at least one message", param: "messages") }
        let conversation = ChatConversation(roleContentPairs: body.messages.map { ($0.role, $0.content?.text ?? "") })
        let prompt: [Int]
        do {
            prompt = try catalog.tokenizer.encodeChat(conversation, addGenerationPrompt: true)
        } catch {
            throw ServingError.invalid("the model's chat template cannot render these messages: \(error)", param: "messages")
        }
        var constrained = try plan(
            model: body.model, prompt: prompt, maximum: body.maxCompletionTokens ?? body.maxTokens, defaultMaximum: nil, temperature: body.temperature, topP: body.topP,
            seed: body.seed, stop: body.stop, n: body.n, stream: body.stream, includeUsage: body.streamOptions?.includeUsage
        )
        if let shape {
            constrained.job.shape = shape
            constrained.job.tokenBytes = catalog.tokenBytes
        }
        let planned = constrained
        let id = ServedAnswer.id("chatcmpl")
        let created = Int(Date().timeIntervalSince1970)
        guard planned.stream else {
            let done = try await generate(planned) { _ in }
            let answer = Answer(
                id: id, object: "chat.completion", created: created, model: planned.model,
                choices: [ChatChoice(message: .init(content: done.text), finishReason: done.finishReason)], usage: Usage(prompt: prompt.count, completion: done.tokens)
            )
            return try Self.json(.ok, answer)
        }
        return stream { send in
            func chunk(_ delta: ChunkChoice.Delta, finish: String? = nil, usage: Usage? = nil) -> Answer<ChunkChoice> {
                Answer(id: id, object: "chat.completion.chunk", created: created, model: planned.model, choices: usage == nil ? [.init(delta: delta, finishReason: finish)] : [], usage: usage)
            }
            try await send(chunk(.init(role: "assistant", content: "")))
            let done = try await generate(planned) { delta in try await send(chunk(.init(content: delta))) }
            try await send(chunk(.init(), finish: done.finishReason))
            if planned.includeUsage {
                try await send(chunk(.init(), usage: Usage(prompt: planned.job.prompt.count, completion: done.tokens)))
            }
        }
    }

    private func complete(_ request: Request) async throws -> Response {
        let body = try await decode(CompletionRequest.self, request)
        guard body.prompt.values.count == 1, let text = body.prompt.values.first else {
            throw ServingError.invalid("prompt must be one string: this server completes one prompt per request", param: "prompt")
        }
        let prompt = catalog.tokenizer.encode(text, addSpecialTokens: true)
        guard !prompt.isEmpty else { throw ServingError.invalid("the prompt has no tokens", param: "prompt") }
        let planned = try plan(
            model: body.model, prompt: prompt, maximum: body.maxTokens, defaultMaximum: 16, temperature: body.temperature, topP: body.topP, seed: body.seed,
            stop: body.stop, n: body.n, stream: body.stream, includeUsage: body.streamOptions?.includeUsage
        )
        let id = ServedAnswer.id("cmpl")
        let created = Int(Date().timeIntervalSince1970)
        @Sendable func answer(_ choices: [TextChoice], usage: Usage? = nil) -> Answer<TextChoice> {
            Answer(id: id, object: "text_completion", created: created, model: planned.model, choices: choices, usage: usage)
        }
        guard planned.stream else {
            let done = try await generate(planned) { _ in }
            return try Self.json(.ok, answer([TextChoice(text: done.text, finishReason: done.finishReason)], usage: Usage(prompt: prompt.count, completion: done.tokens)))
        }
        return stream { send in
            let done = try await generate(planned) { delta in try await send(answer([TextChoice(text: delta)])) }
            try await send(answer([TextChoice(text: "", finishReason: done.finishReason)]))
            if planned.includeUsage { try await send(answer([], usage: Usage(prompt: prompt.count, completion: done.tokens))) }
        }
    }

    /// Checks a request's settings as the API does, and makes the generation job.
    private func plan(
        model: String, prompt: [Int], maximum: Int?, defaultMaximum: Int?, temperature: Double?, topP: Double?, seed: Int?, stop: StopField?, n: Int?,
        stream: Bool?, includeUsage: Bool?
    ) throws -> Planned {
        let adapter = try catalog.adapter(for: model)
        guard n == nil || n == 1 else { throw ServingError.invalid("n must be 1: this server generates one choice per request", param: "n") }
        let temperature = temperature ?? 1
        guard (0...2).contains(temperature) else { throw ServingError.invalid("\(temperature) is not valid for temperature: it must be from 0 to 2", param: "temperature") }
        let topP = topP ?? 1
        guard topP > 0, topP <= 1 else { throw ServingError.invalid("\(topP) is not valid for top_p: it must be above 0 and at most 1", param: "top_p") }
        let stops = stop?.values ?? []
        guard stops.count <= 4 else { throw ServingError.invalid("stop takes at most 4 sequences, got \(stops.count)", param: "stop") }
        if let maximum, maximum < 1 { throw ServingError.invalid("max_tokens must be at least 1, got \(maximum)", param: "max_tokens") }
        let room = catalog.contextLength - prompt.count
        let completion = maximum ?? defaultMaximum.map { min($0, max(room, 1)) } ?? max(room, 1)
        try catalog.checkContext(prompt: prompt.count, completion: completion)
        let settings = GenerationSettings(
            maximumNewTokens: completion, temperature: Float(temperature), topP: Float(topP), seed: seed.map { UInt64(bitPattern: Int64($0)) } ?? UInt64.random(in: 0...UInt64.max),
            stopTokens: catalog.stopTokens
        )
        return Planned(job: .init(prompt: prompt, settings: settings, adapter: adapter), stops: stops, model: model, stream: stream ?? false, includeUsage: includeUsage ?? false)
    }

    /// What a generation came to.
    struct Done: Sendable {
        var text: String
        /// `stop` (an end-of-sequence token or a stop string) or `length`.
        var finishReason: String
        var tokens: Int
    }

    /// Runs `planned`, handing `onDelta` the text as it becomes safe to send (held back at a
    /// possible stop string or half a character), and says how it ended.
    func generate(_ planned: Planned, onDelta: (String) async throws -> Void) async throws -> Done {
        let events = try queue.submit(planned.job)
        var tokens: [Int] = []
        var stops = StopSequences(planned.stops)
        var text = ""
        do {
            for try await event in events {
                switch event {
                case .token(let token):
                    tokens.append(token)
                    // Decoded whole each time: one token may be half of a character.
                    text = catalog.tokenizer.decode(tokens, skipSpecialTokens: true)
                    let (delta, stopped) = stops.next(text)
                    if !delta.isEmpty { try await onDelta(delta) }
                    if stopped {
                        // Leaving the loop ends the stream, and so the generation.
                        return Done(text: String(text.prefix(stops.sent)), finishReason: "stop", tokens: tokens.count)
                    }
                case .finished(let reason):
                    let rest = stops.finish(text)
                    if !rest.isEmpty { try await onDelta(rest) }
                    return Done(text: text, finishReason: reason == .eos ? "stop" : "length", tokens: tokens.count)
                }
            }
        } catch let error as ModelError {
            throw ServingError(status: .internalServerError, message: "the model could not generate: \(error.message)", type: "server_error")
        }
        let rest = stops.finish(text)
        if !rest.isEmpty { try await onDelta(rest) }
        return Done(text: text, finishReason: "length", tokens: tokens.count)
    }

    // MARK: Requests and answers

    private func decode<Body: Decodable>(_ type: Body.Type, _ request: Request) async throws -> Body {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maximumBody)
        } catch is NIOTooManyBytesError {
            throw ServingError(status: .contentTooLarge, message: "The request body is larger than this server takes (\(maximumBody) bytes).", code: "request_too_large")
        }
        do {
            return try FlowJSON.decode(type, from: Array(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw ServingError.invalid("We could not parse the JSON body of your request: \(FlowJSON.describe(error)). The OpenAI API expects a JSON payload.")
        } catch {
            throw ServingError.invalid("We could not parse the JSON body of your request: it is not JSON (\(error)).")
        }
    }

    /// Runs a route, answering what it refuses in the API's error shape. Nothing a request
    /// holds crashes the server: an error of any other kind is a 500 that says what it was.
    private func answer(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let refused as ServingError {
            return Self.error(refused)
        } catch {
            logger.error("a request failed", metadata: ["error": "\(error)"])
            return Self.error(ServingError(status: .internalServerError, message: "The server had an error while processing your request: \(error)", type: "server_error"))
        }
    }

    /// A server-sent event stream: each value `send` is given as `data: <json>`, then
    /// `data: [DONE]`; an error after the first event ends the stream with it as an event.
    private func stream(_ produce: @escaping @Sendable (_ send: @escaping @Sendable (any Encodable & Sendable) async throws -> Void) async throws -> Void) -> Response {
        let body = ResponseBody { writer in
            let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
            let producer = Task {
                do {
                    try await produce { value in continuation.yield(ByteBuffer(string: "data: \(try FlowJSON.encodeText(value))\n\n")) }
                } catch let refused as ServingError {
                    continuation.yield(ByteBuffer(string: "data: \(Self.errorText(refused))\n\n"))
                } catch {
                    continuation.yield(ByteBuffer(string: "data: \(Self.errorText(ServingError(status: .internalServerError, message: "\(error)", type: "server_error")))\n\n"))
                }
                continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
                continuation.finish()
            }
            do {
                for await event in events { try await writer.write(event) }
                try await writer.finish(nil)
            } catch {
                // The client went away: the generation stops at its next token.
                producer.cancel()
                continuation.finish()
                throw error
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: try FlowJSON.encodeText(value))))
    }

    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func errorText(_ error: ServingError) -> String {
        var fields: [String: JSONValue] = ["message": .string(error.message), "type": .string(error.type)]
        fields["param"] = error.param.map(JSONValue.string) ?? .null
        fields["code"] = error.code.map(JSONValue.string) ?? .null
        return (try? FlowJSON.encodeText(JSONValue.object(["error": .object(fields)]))) ?? #"{"error":{"message":"unreadable error"}}"#
    }

    static func error(_ error: ServingError) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let seconds = error.retryAfter { headers[.retryAfter] = "\(seconds)" }
        return Response(status: error.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: errorText(error))))
    }
}
