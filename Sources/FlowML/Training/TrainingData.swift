import Foundation

/// One training example as token ids and labels (-100 where no loss applies).
public struct TokenizedExample: Sendable, Equatable {
    public var ids: [Int]
    public var labels: [Int]

    public init(ids: [Int], labels: [Int]) {
        self.ids = ids
        self.labels = labels
    }
}

/// Reads the JSON-lines datasets TRL users have and tokenizes them as TRL's `SFTTrainer`
/// does:
/// - `{"text": …}`: the text and EOS, with the tokenizer's special tokens (BOS), loss on
///   every token;
/// - `{"prompt": …, "completion": …}`: prompt, completion and EOS encoded as one text,
///   loss on what follows the prompt's own tokens; when both are lists of messages, the
///   chat template renders the prompt with its generation prompt and the two together;
/// - `{"messages": [{"role": …, "content": …}]}`: rendered with the model's chat template
///   (ChatML when the folder has none: ``ModelTokenizer/usesDefaultTemplate``), loss on
///   the assistant's turns, each with the end-of-turn token the template closes it with.
public enum TrainingData {
    /// A dataset's examples, and whether chats in it were rendered as ChatML for want of
    /// the model's own template (which the trainer's log says).
    public struct TrainingSet: Sendable {
        public var examples: [TokenizedExample]
        public var renderedChatsAsChatML: Bool
    }

    public static func load(_ url: URL, tokenizer: ModelTokenizer, maximumLength: Int) throws -> TrainingSet {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw ModelError("cannot read the dataset \(url.path)") }
        return try parse(text, tokenizer: tokenizer, maximumLength: maximumLength, source: url.lastPathComponent)
    }

    public static func parse(_ text: String, tokenizer: ModelTokenizer, maximumLength: Int, source: String = "the dataset") throws -> TrainingSet {
        var examples: [TokenizedExample] = []
        var renderedChats = false
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            let place = "line \(number + 1) of \(source)"
            guard case .object(let object)? = try? TemplateValue.parseJSON(trimmed) else {
                throw ModelError("\(place) is not a JSON object")
            }
            let example: TokenizedExample
            do {
                let rendersChat: Bool
                (example, rendersChat) = try self.example(object, tokenizer: tokenizer)
                renderedChats = renderedChats || rendersChat
            } catch let error as TemplateError {
                throw ModelError("\(place): \(error.message)")
            } catch let error as ModelError {
                throw ModelError("\(place): \(error.message)")
            }
            guard example.ids.count >= 2 else { continue }
            examples.append(TokenizedExample(ids: Array(example.ids.prefix(maximumLength)), labels: Array(example.labels.prefix(maximumLength))))
        }
        guard !examples.isEmpty else { throw ModelError("\(source) has no example of two tokens or more") }
        return TrainingSet(examples: examples, renderedChatsAsChatML: renderedChats && tokenizer.usesDefaultTemplate)
    }

    /// One line's example, and whether the chat template rendered it.
    private static func example(_ object: TemplateValue.OrderedObject, tokenizer: ModelTokenizer) throws -> (TokenizedExample, rendersChat: Bool) {
        // TRL appends EOS to a text or a completion that does not already end with it.
        func withEOS(_ text: String) -> String {
            guard let eos = tokenizer.eosToken, !text.hasSuffix(eos) else { return text }
            return text + eos
        }
        if case .string(let text)? = object["text"] {
            let ids = tokenizer.encode(withEOS(text), addSpecialTokens: true)
            return (TokenizedExample(ids: ids, labels: ids), false)
        }
        func completion(_ ids: [Int], afterPrompt promptLength: Int) -> TokenizedExample {
            TokenizedExample(ids: ids, labels: ids.enumerated().map { $0 < promptLength ? TrainingBatch.ignoredLabel : $1 })
        }
        if case .string(let prompt)? = object["prompt"], case .string(let text)? = object["completion"] {
            let promptLength = tokenizer.encode(prompt, addSpecialTokens: true).count
            return (completion(tokenizer.encode(prompt + withEOS(text), addSpecialTokens: true), afterPrompt: promptLength), false)
        }
        // A conversational prompt and completion: the prompt with the template's generation
        // prompt, the two together without.
        if case .array(let prompt)? = object["prompt"], case .array(let text)? = object["completion"] {
            let promptIDs = try tokenizer.encodeChat(try ChatConversation(messages: .array(prompt), tools: object["tools"]), addGenerationPrompt: true)
            let ids = try tokenizer.encodeChat(try ChatConversation(messages: .array(prompt + text), tools: object["tools"]), addGenerationPrompt: false)
            return (completion(ids, afterPrompt: promptIDs.count), true)
        }
        if let messages = object["messages"] {
            let conversation = try ChatConversation(messages: messages, tools: object["tools"])
            return (try AssistantMask.example(conversation, tokenizer: tokenizer), true)
        }
        throw ModelError("it has none of text, prompt and completion (two strings or two lists of messages), or messages")
    }
}

/// A small, fast, seedable generator (SplitMix64) whose state fits in a checkpoint.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
