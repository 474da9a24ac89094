import Foundation

/// Which tokens of a rendered chat are the assistant's, for a loss on those alone.
///
/// Templates place a turn's content in ways of their own (Mistral's moves the system
/// message, Llama 2's strips the content), so the renderer cannot be told where a turn
/// starts from the messages alone. Each assistant content is rendered a second time between
/// two private-use markers (inside its outer whitespace, so that a template's `trim` acts
/// as on the real text); with the markers removed that render must equal the real one,
/// and the markers then give each turn's place in it. A turn is its content and the
/// special token the template closes it with (`</s>`, `<|im_end|>`, `<|eot_id|>`) when
/// only whitespace stands between them: what the model must learn to generate.
enum AssistantMask {
    static let open: Unicode.Scalar = "\u{E000}"
    static let close: Unicode.Scalar = "\u{E001}"

    static func example(_ conversation: ChatConversation, tokenizer: ModelTokenizer) throws -> TokenizedExample {
        let text = try tokenizer.renderChat(conversation, addGenerationPrompt: false)
        var marked = conversation
        var assistantTurns = 0
        for (index, role) in conversation.roles.enumerated() where role == "assistant" {
            guard let content = conversation.content(at: index) else {
                throw ModelError("message \(index + 1) is the assistant's but its content is not a string; the loss needs the text it must learn")
            }
            guard !content.unicodeScalars.contains(open), !content.unicodeScalars.contains(close) else {
                throw ModelError("message \(index + 1) contains the private-use characters U+E000 or U+E001, which mark turns here")
            }
            let scalars = Array(content.unicodeScalars)
            let start = scalars.firstIndex { !$0.properties.isWhitespace } ?? scalars.count
            let end = (scalars.lastIndex { !$0.properties.isWhitespace } ?? -1) + 1
            guard start < end else { continue }
            let wrapped = Array(scalars[..<start]) + [open] + Array(scalars[start..<end]) + [close] + Array(scalars[end...])
            marked = marked.replacingContent(at: index, with: String(scalars: wrapped))
            assistantTurns += 1
        }
        let markedText = Array(try tokenizer.renderChat(marked, addGenerationPrompt: false).unicodeScalars)

        var plain: [Unicode.Scalar] = []
        var spans: [Range<Int>] = []
        var openedAt: Int?
        for scalar in markedText {
            if scalar == open {
                guard openedAt == nil else { throw unfollowable("opens a turn inside another") }
                openedAt = plain.count
            } else if scalar == close {
                guard let start = openedAt else { throw unfollowable("closes a turn it never opened") }
                spans.append(start..<plain.count)
                openedAt = nil
            } else {
                plain.append(scalar)
            }
        }
        guard openedAt == nil, spans.count == assistantTurns, plain.elementsEqual(text.unicodeScalars) else {
            throw unfollowable("renders the assistant's content other than as written")
        }

        let ids = tokenizer.tokenizer.encode(text)
        var learned = [Bool](repeating: false, count: ids.count)
        for span in spans {
            let end = extendedThroughEndOfTurn(span.upperBound, in: plain, tokenizer: tokenizer)
            let first = tokenBoundary(before: span.lowerBound, in: plain, ids: ids, tokenizer: tokenizer)
            let last = tokenBoundary(before: end, in: plain, ids: ids, tokenizer: tokenizer, roundingUp: true)
            for position in first..<max(first, last) { learned[position] = true }
        }
        return TokenizedExample(ids: ids, labels: zip(ids, learned).map { $1 ? $0 : TrainingBatch.ignoredLabel })
    }

    private static func unfollowable(_ what: String) -> ModelError {
        ModelError("the chat template \(what), so the assistant's tokens cannot be told apart for the loss; render the chats to {\"prompt\", \"completion\"} pairs instead")
    }

    /// `end`, moved past the special token that closes the turn when only whitespace
    /// stands before it.
    private static func extendedThroughEndOfTurn(_ end: Int, in text: [Unicode.Scalar], tokenizer: ModelTokenizer) -> Int {
        var position = end
        while position < text.count, text[position].properties.isWhitespace { position += 1 }
        let rest = text[position...]
        let closing = tokenizer.tokenizer.addedTokens.specialContents.filter { rest.starts(with: $0) }.max { $0.count < $1.count }
        return closing.map { position + $0.count } ?? end
    }

    /// How many of `ids` the text before `position` accounts for: the length of the common
    /// prefix of its own encoding and the whole one. A boundary inside a token (a space the
    /// next word's token carries) falls before that token, or after it with `roundingUp`.
    private static func tokenBoundary(before position: Int, in text: [Unicode.Scalar], ids: [Int], tokenizer: ModelTokenizer, roundingUp: Bool = false) -> Int {
        let prefix = tokenizer.tokenizer.encode(String(scalars: text[..<position]))
        var common = 0
        while common < prefix.count, common < ids.count, prefix[common] == ids[common] { common += 1 }
        if roundingUp, common < prefix.count, common < ids.count { return common + 1 }
        return common
    }
}
