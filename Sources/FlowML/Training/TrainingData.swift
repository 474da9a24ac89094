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

/// Reads the JSON-lines datasets TRL users have and tokenizes them:
/// `{"text": ...}` (loss on every token), `{"prompt": ..., "completion": ...}` (loss on the
/// completion only) and `{"messages": [{"role": ..., "content": ...}]}` in the ChatML
/// template (loss on the assistant's turns only).
public enum TrainingData {
    public static func load(_ url: URL, tokenizer: Tokenizer, maximumLength: Int) throws -> [TokenizedExample] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw ModelError("cannot read the dataset \(url.path)") }
        return try parse(text, tokenizer: tokenizer, maximumLength: maximumLength, source: url.lastPathComponent)
    }

    public static func parse(_ text: String, tokenizer: Tokenizer, maximumLength: Int, source: String = "the dataset") throws -> [TokenizedExample] {
        var examples: [TokenizedExample] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw ModelError("line \(number + 1) of \(source) is not a JSON object")
            }
            var ids: [Int] = []
            var labels: [Int] = []
            func add(_ text: String, learn: Bool) {
                let tokens = tokenizer.encode(text)
                ids += tokens
                labels += learn ? tokens : Array(repeating: TrainingBatch.ignoredLabel, count: tokens.count)
            }
            if let text = object["text"] as? String {
                add(text, learn: true)
            } else if let prompt = object["prompt"] as? String, let completion = object["completion"] as? String {
                add(prompt, learn: false)
                add(completion, learn: true)
            } else if let messages = object["messages"] as? [[String: Any]] {
                for message in messages {
                    guard let role = message["role"] as? String, let content = message["content"] as? String else {
                        throw ModelError("line \(number + 1) of \(source): each message needs a role and a content")
                    }
                    add("<|im_start|>\(role)\n", learn: false)
                    add("\(content)<|im_end|>\n", learn: role == "assistant")
                }
            } else {
                throw ModelError("line \(number + 1) of \(source) has none of text, prompt and completion, or messages")
            }
            guard ids.count >= 2 else { continue }
            examples.append(TokenizedExample(ids: Array(ids.prefix(maximumLength)), labels: Array(labels.prefix(maximumLength))))
        }
        guard !examples.isEmpty else { throw ModelError("\(source) has no example of two tokens or more") }
        return examples
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
