import FlowCore
import Foundation

/// One message of a chat.
public struct ChatMessage: Codable, Sendable, Equatable {
    public var role: String
    public var content: String?
    /// Tool calls the model asked for, passed through as the server sent them.
    public var toolCalls: JSONText?
    public var toolCallID: String?
    public var name: String?

    public init(role: String, content: String?, toolCalls: JSONText? = nil, toolCallID: String? = nil, name: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.name = name
    }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }
}

/// A Chat Completions request (`POST /chat/completions`).
public struct ChatRequest: Codable, Sendable, Equatable {
    public var model: String
    public var messages: [ChatMessage]
    public var temperature: Double?
    public var maxTokens: Int?
    /// `{"type": "json_schema", "json_schema": {...}}` or `{"type": "json_object"}`.
    public var responseFormat: JSONText?
    /// Tool definitions, passed through.
    public var tools: JSONText?
    public var toolChoice: JSONText?
    public var stream: Bool?
    public var streamOptions: StreamOptions?

    public struct StreamOptions: Codable, Sendable, Equatable {
        public var includeUsage: Bool
    }

    public init(model: String, messages: [ChatMessage], temperature: Double? = nil, maxTokens: Int? = nil, responseFormat: JSONText? = nil, tools: JSONText? = nil, toolChoice: JSONText? = nil) {
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.responseFormat = responseFormat
        self.tools = tools
        self.toolChoice = toolChoice
    }

    /// A response format that asks for JSON matching `schema`, strictly.
    public static func jsonSchema(name: String, schema: JSONText) throws -> JSONText {
        try JSONText(validating: #"{"type":"json_schema","json_schema":{"name":"\#(name)","strict":true,"schema":\#(schema.text)}}"#)
    }
}

/// Tokens a request used, as the server reports them.
public struct TokenUsage: Codable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int?

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = promptTokens + completionTokens
    }

    /// Embeddings report no completion tokens: they count as 0.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        promptTokens = try container.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        completionTokens = try container.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
        totalTokens = try container.decodeIfPresent(Int.self, forKey: .totalTokens)
    }
}

/// A Chat Completions response. Fields the server adds are ignored.
public struct ChatResponse: Codable, Sendable, Equatable {
    public struct Choice: Codable, Sendable, Equatable {
        public var index: Int
        public var message: ChatMessage
        public var finishReason: String?
    }

    public var id: String
    public var model: String
    public var choices: [Choice]
    public var usage: TokenUsage?

    /// The first choice's text.
    public var text: String { choices.first?.message.content ?? "" }
}

/// One server-sent event of a streamed chat.
struct ChatChunk: Decodable {
    struct Choice: Decodable {
        struct Delta: Decodable {
            var role: String?
            var content: String?
        }

        var index: Int
        var delta: Delta
        var finishReason: String?
    }

    var id: String
    var model: String
    var choices: [Choice]
    var usage: TokenUsage?
}

/// An embeddings request (`POST /embeddings`).
public struct EmbeddingsRequest: Codable, Sendable, Equatable {
    public var model: String
    public var input: [String]

    public init(model: String, input: [String]) {
        self.model = model
        self.input = input
    }
}

public struct EmbeddingsResponse: Codable, Sendable, Equatable {
    public struct Embedding: Codable, Sendable, Equatable {
        public var index: Int
        public var embedding: [Double]
    }

    public var model: String
    public var data: [Embedding]
    public var usage: TokenUsage?
}

/// The error body of the API: `{"error": {"message": ..., "type": ..., "code": ...}}`.
struct APIErrorBody: Decodable {
    struct Detail: Decodable {
        var message: String?
        var type: String?
        var code: String?

        enum CodingKeys: String, CodingKey { case message, type, code }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            message = try? container.decodeIfPresent(String.self, forKey: .message)
            type = try? container.decodeIfPresent(String.self, forKey: .type)
            // Some servers send the code as a number.
            code = (try? container.decodeIfPresent(String.self, forKey: .code)) ?? (try? container.decodeIfPresent(Int.self, forKey: .code)).flatMap { $0.map(String.init) }
        }
    }

    var error: Detail
}
