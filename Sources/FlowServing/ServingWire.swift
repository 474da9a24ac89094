import FlowCore
import Foundation

// The OpenAI API's request and answer shapes, as this server reads and writes them
// (https://platform.openai.com/docs/api-reference/chat). Requests are read leniently
// (content as text or as parts, `stop` as one string or a list); answers carry every
// field the official clients read.

/// `POST /v1/chat/completions`.
struct ChatCompletionRequest: Decodable, Sendable {
    struct Message: Decodable, Sendable {
        var role: String
        var content: Content?
    }

    /// A message's content: a string, or a list of parts of which the text ones count.
    enum Content: Decodable, Sendable {
        case text(String)
        case parts([Part])

        struct Part: Decodable, Sendable {
            var type: String
            var text: String?
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) { self = .text(text) } else { self = .parts(try container.decode([Part].self)) }
        }

        var text: String {
            switch self {
            case .text(let text): text
            case .parts(let parts): parts.compactMap { $0.type == "text" ? $0.text : nil }.joined()
            }
        }
    }

    var model: String
    var messages: [Message]
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Double?
    var topP: Double?
    var seed: Int?
    var stop: StopField?
    var n: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var responseFormat: JSONValue?
    var tools: JSONValue?
}

/// `POST /v1/completions`.
struct CompletionRequest: Decodable, Sendable {
    var model: String
    var prompt: StopField
    var maxTokens: Int?
    var temperature: Double?
    var topP: Double?
    var seed: Int?
    var stop: StopField?
    var n: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?
}

struct StreamOptions: Decodable, Sendable {
    var includeUsage: Bool?
}

/// A field the API takes as one string or a list of strings (`stop`, a completion's `prompt`).
struct StopField: Decodable, Sendable {
    var values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) { values = [one] } else { values = try container.decode([String].self) }
    }
}

/// `POST /v1/load_lora_adapter` (vLLM's admin call) and `/v1/unload_lora_adapter`.
struct AdapterRequest: Decodable, Sendable {
    var loraName: String
    var loraPath: String?
}

struct Usage: Encodable, Sendable {
    var promptTokens: Int
    var completionTokens: Int
    var totalTokens: Int

    init(prompt: Int, completion: Int) {
        promptTokens = prompt
        completionTokens = completion
        totalTokens = prompt + completion
    }
}

/// An answer of the API: a chat completion, one of its stream's chunks, or a text
/// completion (and its chunks), which differ only in `object` and their choices.
struct Answer<Choice: Encodable & Sendable>: Encodable, Sendable {
    var id: String
    var object: String
    var created: Int
    var model: String
    var systemFingerprint = ServedAnswer.fingerprint
    var choices: [Choice]
    var usage: Usage?
}

struct ChatChoice: Encodable, Sendable {
    struct Message: Encodable, Sendable {
        var role = "assistant"
        var content: String
    }

    var index = 0
    var message: Message
    var finishReason: String
}

struct ChunkChoice: Encodable, Sendable {
    struct Delta: Encodable, Sendable {
        var role: String?
        var content: String?
    }

    var index = 0
    var delta: Delta
    var finishReason: String?
}

struct TextChoice: Encodable, Sendable {
    var text: String
    var index = 0
    var finishReason: String?
}

struct ModelList: Encodable, Sendable {
    struct Model: Encodable, Sendable {
        var id: String
        var object = "model"
        var created: Int
        var ownedBy = "antifragileflow"
        /// For an adapter: the base model it runs over (as vLLM says it).
        var parent: String?
    }

    var object = "list"
    var data: [Model]
}

enum ServedAnswer {
    static let fingerprint = "fp_flow_ml_serve"

    static func id(_ prefix: String) -> String {
        prefix + "-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }
}
