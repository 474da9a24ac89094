import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An OpenAI-compatible HTTP server on loopback, run by the tests themselves (no machine
/// here reaches the internet). It answers in the real API's shapes: chat completions
/// (JSON, and server-sent events when `stream` is set), embeddings, error bodies, and the
/// `x-ratelimit-*` headers; and it can be told to answer the next requests with 429 and
/// `Retry-After`, 500, slowly, by resetting the connection, or with malformed JSON.
///
/// With a JSON schema response format it answers with an object that matches the schema;
/// otherwise with a sentence that quotes the last user message.
public final class FakeOpenAIServer: Sendable {
    public enum Behaviour: Sendable {
        case tooManyRequests(retryAfterSeconds: Int)
        case serverError
        case slow(Duration)
        case resetConnection
        case malformedJSON
    }

    /// A request the server received.
    public struct Received: Sendable {
        public var path: String
        public var headers: [String: String]
        public var body: [String: any Sendable]
        public var at: ContinuousClock.Instant
        public var model: String { body["model"] as? String ?? "" }
    }

    private struct State {
        var script: [Behaviour] = []
        var received: [Received] = []
        /// What `x-ratelimit-limit-*` announces, per minute.
        var announcedRequests = 10_000
        var announcedTokens = 2_000_000
        var enforcement: Enforcement?
        var requestBucket = 0.0
        var tokenBucket = 0.0
        var bucketsFilledAt = ContinuousClock.now
        /// When each call the limit let through arrived, and how many it refused.
        var admitted: [ContinuousClock.Instant] = []
        var refused = 0
        var refusedArrivals: [ContinuousClock.Instant] = []
    }

    /// A limit of the server's own, enforced as OpenAI does: token buckets refilled
    /// continuously, a 429 with the API's error body and `retry-after`, `retry-after-ms`
    /// and `x-ratelimit-*` headers when a call does not fit.
    public struct Enforcement: Sendable {
        public var requestsPerSecond: Double
        /// Calls that may arrive at once after a quiet spell.
        public var burst: Int
        public var tokensPerMinute: Int?
        /// Whether answers announce the limits in `x-ratelimit-limit-*` (OpenAI's do;
        /// some compatible servers' do not, and then only 429s teach the client).
        public var announces: Bool

        public init(requestsPerSecond: Double, burst: Int, tokensPerMinute: Int? = nil, announces: Bool = true) {
            self.requestsPerSecond = requestsPerSecond
            self.burst = burst
            self.tokensPerMinute = tokensPerMinute
            self.announces = announces
        }
    }

    /// Enforces `enforcement` on every chat call from now on.
    public func enforce(_ enforcement: Enforcement) {
        state.withLock { state in
            state.enforcement = enforcement
            state.requestBucket = Double(enforcement.burst)
            state.tokenBucket = Double(enforcement.tokensPerMinute ?? 0)
            state.bucketsFilledAt = .now
            state.announcedRequests = Int(enforcement.requestsPerSecond * 60)
            if let tokens = enforcement.tokensPerMinute { state.announcedTokens = tokens }
        }
    }

    /// When each call the enforced limit let through arrived, in order.
    public var admittedArrivals: [ContinuousClock.Instant] { state.withLock { $0.admitted } }
    /// Calls the enforced limit refused with 429.
    public var refusedCount: Int { state.withLock { $0.refused } }
    /// When each call the enforced limit refused arrived, in order.
    public var refusedArrivals: [ContinuousClock.Instant] { state.withLock { $0.refusedArrivals } }

    /// Whether a call of `tokens` fits the enforced limit now; the 429's headers and body
    /// when it does not.
    private func admit(tokens: Int, model: String) -> (headers: [(String, String)], body: String)? {
        state.withLock { state -> (headers: [(String, String)], body: String)? in
            guard let enforcement = state.enforcement else { return nil }
            let now = ContinuousClock.now
            let elapsed = (now - state.bucketsFilledAt) / .seconds(1)
            state.bucketsFilledAt = now
            state.requestBucket = min(Double(enforcement.burst), state.requestBucket + elapsed * enforcement.requestsPerSecond)
            if let perMinute = enforcement.tokensPerMinute {
                state.tokenBucket = min(Double(perMinute), state.tokenBucket + elapsed * Double(perMinute) / 60)
            }
            let requestsFit = state.requestBucket >= 1
            let tokensFit = enforcement.tokensPerMinute.map { _ in state.tokenBucket >= Double(tokens) } ?? true
            if requestsFit && tokensFit {
                state.requestBucket -= 1
                if enforcement.tokensPerMinute != nil { state.tokenBucket -= Double(tokens) }
                state.admitted.append(now)
                return nil
            }
            state.refused += 1
            state.refusedArrivals.append(now)
            let perMinute = Int(enforcement.requestsPerSecond * 60)
            let wait: Double
            let body: String
            if !requestsFit {
                wait = (1 - state.requestBucket) / enforcement.requestsPerSecond
                body = Self.errorBody(
                    "Rate limit reached for \(model) in organization org-fake on requests per min (RPM): Limit \(perMinute), Used \(perMinute), Requested 1. Please try again in \(Int((wait * 1000).rounded(.up)))ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
                    type: "requests", code: "rate_limit_exceeded"
                )
            } else {
                let perMinuteTokens = enforcement.tokensPerMinute ?? 0
                wait = (Double(tokens) - state.tokenBucket) / (Double(perMinuteTokens) / 60)
                body = Self.errorBody(
                    "Rate limit reached for \(model) in organization org-fake on tokens per min (TPM): Limit \(perMinuteTokens), Used \(perMinuteTokens - Int(state.tokenBucket)), Requested \(tokens). Please try again in \(Int((wait * 1000).rounded(.up)))ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
                    type: "tokens", code: "rate_limit_exceeded"
                )
            }
            let milliseconds = Int((wait * 1000).rounded(.up))
            var headers: [(String, String)] = [("retry-after", "\(Int(wait.rounded(.up)))"), ("retry-after-ms", "\(milliseconds)"), ("content-type", "application/json")]
            if enforcement.announces {
                headers += [
                    ("x-ratelimit-limit-requests", "\(perMinute)"), ("x-ratelimit-remaining-requests", "\(Int(state.requestBucket))"),
                    ("x-ratelimit-reset-requests", "\(milliseconds)ms"),
                ]
                if let tokensPerMinute = enforcement.tokensPerMinute {
                    headers += [("x-ratelimit-limit-tokens", "\(tokensPerMinute)"), ("x-ratelimit-remaining-tokens", "\(Int(state.tokenBucket))")]
                }
            }
            return (headers, body)
        }
    }

    public let port: Int
    /// The key the server accepts; nil accepts any request.
    public let requiredKey: String?
    private let state = Mutex(State())
    private let channel: any Channel

    public var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    public init(requiredKey: String? = nil) async throws {
        self.requiredKey = requiredKey
        let box = HandlerBox()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeOpenAIHandler(server: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        port = channel.localAddress?.port ?? 0
        box.server.withLock { $0 = self }
    }

    /// The next requests get these behaviours, one each, in order.
    public func script(_ behaviours: Behaviour...) {
        state.withLock { $0.script += behaviours }
    }

    public var received: [Received] { state.withLock { $0.received } }

    /// The limits the answers' `x-ratelimit-limit-*` headers announce from now on.
    public func announce(requestsPerMinute: Int, tokensPerMinute: Int) {
        state.withLock { state in
            state.announcedRequests = requestsPerMinute
            state.announcedTokens = tokensPerMinute
        }
    }

    public func stop() async {
        try? await channel.close()
    }

    fileprivate func record(_ received: Received) -> Behaviour? {
        state.withLock { state in
            state.received.append(received)
            return state.script.isEmpty ? nil : state.script.removeFirst()
        }
    }

    /// The response to a well-formed request: status, headers, and body parts (one part,
    /// or the events of a stream).
    fileprivate func answer(path: String, headers: [String: String], body: [String: Any]) -> (Int, [(String, String)], [String]) {
        let (requests, tokens) = state.withLock { ($0.announcedRequests, $0.announcedTokens) }
        var responseHeaders: [(String, String)] = [
            ("x-ratelimit-limit-requests", "\(requests)"), ("x-ratelimit-remaining-requests", "\(requests - 1)"), ("x-ratelimit-reset-requests", "6ms"),
            ("x-ratelimit-limit-tokens", "\(tokens)"), ("x-ratelimit-remaining-tokens", "\(tokens - 1000)"), ("x-ratelimit-reset-tokens", "30ms"),
            ("openai-processing-ms", "1"),
        ]
        if let requiredKey, headers["authorization"] != "Bearer \(requiredKey)" {
            return (401, responseHeaders, [Self.errorBody("Incorrect API key provided: sk-...\(requiredKey.suffix(0)). You can find your API key at https://platform.openai.com/account/api-keys.", type: "invalid_request_error", code: "invalid_api_key")])
        }
        let model = body["model"] as? String ?? ""
        guard !model.isEmpty else {
            return (400, responseHeaders, [Self.errorBody("you must provide a model parameter", type: "invalid_request_error", code: nil)])
        }
        let enforced = state.withLock { $0.enforcement }
        if let enforced {
            let promptCharacters = (body["messages"] as? [[String: Any]] ?? []).reduce(0) { $0 + (($1["content"] as? String)?.utf8.count ?? 0) }
            if let refusal = admit(tokens: max(1, promptCharacters / 4) + (body["max_tokens"] as? Int ?? 0), model: model) {
                return (429, refusal.headers, [refusal.body])
            }
            if enforced.announces {
                let remaining = state.withLock { Int($0.requestBucket) }
                responseHeaders = [
                    ("x-ratelimit-limit-requests", "\(requests)"), ("x-ratelimit-remaining-requests", "\(remaining)"), ("x-ratelimit-reset-requests", "\(Int(1000 / enforced.requestsPerSecond))ms"),
                    ("x-ratelimit-limit-tokens", "\(tokens)"), ("openai-processing-ms", "1"),
                ]
            } else {
                responseHeaders = [("openai-processing-ms", "1")]
            }
        }
        if path.hasSuffix("/embeddings") {
            let inputs = body["input"] as? [String] ?? []
            let data = inputs.enumerated().map { index, text -> [String: Any] in
                ["object": "embedding", "index": index, "embedding": (0..<8).map { Double((text.utf8.count + $0 * 7) % 13) / 13 }]
            }
            let tokens = max(1, inputs.reduce(0) { $0 + $1.utf8.count } / 4)
            return (200, responseHeaders + [("content-type", "application/json")], [Self.json(["object": "list", "model": model, "data": data, "usage": ["prompt_tokens": tokens, "total_tokens": tokens]])])
        }
        let messages = body["messages"] as? [[String: Any]] ?? []
        let promptCharacters = messages.reduce(0) { $0 + (($1["content"] as? String)?.utf8.count ?? 0) }
        let content: String
        if let format = body["response_format"] as? [String: Any], let schema = (format["json_schema"] as? [String: Any])?["schema"] {
            content = Self.json(Self.instance(of: schema, name: "answer"))
        } else {
            let last = messages.last { $0["role"] as? String == "user" }?["content"] as? String ?? ""
            content = "Understood. You wrote: \(last.prefix(60))"
        }
        let usage: [String: Any] = ["prompt_tokens": max(1, promptCharacters / 4), "completion_tokens": max(1, content.utf8.count / 4), "total_tokens": max(1, promptCharacters / 4) + max(1, content.utf8.count / 4)]
        let id = "chatcmpl-\(UUID().uuidString.prefix(12))"
        let created = Int(Date().timeIntervalSince1970)
        if body["stream"] as? Bool == true {
            var events: [String] = []
            let pieces = Self.split(content, into: 4)
            for (index, piece) in pieces.enumerated() {
                var delta: [String: Any] = ["content": piece]
                if index == 0 { delta["role"] = "assistant" }
                events.append("data: " + Self.json(["id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [["index": 0, "delta": delta, "finish_reason": NSNull()]]]) + "\n\n")
            }
            events.append("data: " + Self.json(["id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [["index": 0, "delta": [String: Any](), "finish_reason": "stop"]]]) + "\n\n")
            if (body["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true {
                events.append("data: " + Self.json(["id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [Any](), "usage": usage]) + "\n\n")
            }
            events.append("data: [DONE]\n\n")
            return (200, responseHeaders + [("content-type", "text/event-stream")], events)
        }
        responseHeaders.append(("content-type", "application/json"))
        let response: [String: Any] = [
            "id": id, "object": "chat.completion", "created": created, "model": model, "system_fingerprint": "fp_fake",
            "choices": [["index": 0, "message": ["role": "assistant", "content": content, "refusal": NSNull()], "logprobs": NSNull(), "finish_reason": "stop"]],
            "usage": usage,
        ]
        return (200, responseHeaders, [Self.json(response)])
    }

    static func errorBody(_ message: String, type: String, code: String?) -> String {
        json(["error": ["message": message, "type": type, "param": NSNull(), "code": code.map { $0 as Any } ?? NSNull()]])
    }

    static func json(_ value: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])) ?? Data("null".utf8), as: UTF8.self)
    }

    /// A value that matches a JSON schema: every property, arrays of two items.
    static func instance(of schema: Any, name: String) -> Any {
        guard let schema = schema as? [String: Any] else { return "\(name)" }
        if let values = schema["enum"] as? [Any], let first = values.first { return first }
        let type = (schema["type"] as? String) ?? ((schema["type"] as? [String])?.first { $0 != "null" }) ?? "string"
        switch type {
        case "object":
            let properties = schema["properties"] as? [String: Any] ?? [:]
            var object: [String: Any] = [:]
            for (key, value) in properties { object[key] = instance(of: value, name: key) }
            return object
        case "array":
            let items = schema["items"] ?? ["type": "string"]
            return [instance(of: items, name: "\(name) 1"), instance(of: items, name: "\(name) 2")]
        case "integer": return 3
        case "number": return 0.5
        case "boolean": return true
        default: return "\(name.replacingOccurrences(of: "_", with: " "))"
        }
    }

    static func split(_ text: String, into parts: Int) -> [String] {
        let characters = Array(text)
        let size = max(1, (characters.count + parts - 1) / parts)
        return stride(from: 0, to: characters.count, by: size).map { String(characters[$0..<min($0 + size, characters.count)]) }
    }
}

/// Lets the channel handlers reach the server once it exists.
final class HandlerBox: Sendable {
    let server = Mutex<FakeOpenAIServer?>(nil)
}

final class FakeOpenAIHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let box: HandlerBox
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(server: HandlerBox) { box = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head, let server = box.server.withLock({ $0 }) else { return }
            let headers = Dictionary(head.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
            let parsed = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
            let path = String(head.uri.split(separator: "?").first ?? "")
            let sendableBody = parsed.mapValues { FakeOpenAIHandler.sendable($0) }
            let behaviour = server.record(.init(path: path, headers: headers, body: sendableBody, at: .now))
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            switch behaviour {
            case .resetConnection:
                context.close(promise: nil)
            case .tooManyRequests(let seconds):
                respond(loopBound.value, 429, [("retry-after", "\(seconds)"), ("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "\(seconds)s"), ("content-type", "application/json")],
                        [FakeOpenAIServer.errorBody("Rate limit reached for requests. Please try again in \(seconds)s.", type: "requests", code: "rate_limit_exceeded")])
            case .serverError:
                respond(loopBound.value, 500, [("content-type", "application/json")], [FakeOpenAIServer.errorBody("The server had an error while processing your request.", type: "server_error", code: nil)])
            case .malformedJSON:
                respond(loopBound.value, 200, [("content-type", "application/json")], [#"{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess"#])
            case .slow(let delay):
                let (status, responseHeaders, parts) = server.answer(path: path, headers: headers, body: parsed)
                context.eventLoop.scheduleTask(in: .milliseconds(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)) {
                    self.respond(loopBound.value, status, responseHeaders, parts)
                }
            case nil:
                let (status, responseHeaders, parts) = server.answer(path: path, headers: headers, body: parsed)
                respond(loopBound.value, status, responseHeaders, parts)
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: Int, _ headers: [(String, String)], _ parts: [String]) {
        var httpHeaders = HTTPHeaders(headers)
        let streaming = parts.count > 1
        if streaming {
            httpHeaders.add(name: "transfer-encoding", value: "chunked")
        } else {
            httpHeaders.add(name: "content-length", value: String(parts.first?.utf8.count ?? 0))
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: httpHeaders))), promise: nil)
        for part in parts {
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: part)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// JSON values as the server records them.
    static func sendable(_ value: Any) -> any Sendable {
        switch value {
        case let string as String: return string
        case let number as NSNumber: return number.doubleValue
        case let array as [Any]: return array.map(sendable)
        case let object as [String: Any]: return object.mapValues(sendable)
        default: return String(describing: value)
        }
    }
}
