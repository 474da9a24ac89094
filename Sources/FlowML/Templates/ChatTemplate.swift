import Foundation

/// A model's chat template: the Jinja text in its `tokenizer_config.json`, rendered as
/// Transformers' `apply_chat_template` renders it (`trim_blocks`, `lstrip_blocks`, the
/// variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, `tools`).
public struct ChatTemplate: Sendable {
    public let source: String
    let nodes: [TemplateNode]

    /// The template used when a model folder has none: ChatML.
    public static let chatML = try! ChatTemplate(
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )

    public init(_ source: String) throws {
        self.source = source
        do {
            nodes = try TemplateParser.parse(source)
        } catch let error as TemplateError {
            throw TemplateError("the chat template does not parse: \(error.message)")
        }
    }

    /// The text of `conversation`, as `apply_chat_template(messages, tokenize=False, ...)`.
    public func render(_ conversation: ChatConversation, addGenerationPrompt: Bool, specialTokens: [String: String] = [:]) throws -> String {
        var variables: [String: TemplateValue] = [
            "messages": conversation.messages,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let tools = conversation.tools { variables["tools"] = tools }
        for (name, value) in specialTokens { variables[name] = .string(value) }
        var renderer = TemplateRenderer(variables: variables)
        return try renderer.render(nodes)
    }
}

/// The messages of one chat (and the tools offered in it), as the template sees them:
/// dictionaries that keep their keys in the order they were written.
public struct ChatConversation: Sendable {
    let messages: TemplateValue
    let tools: TemplateValue?

    /// A JSON array of `{"role": …, "content": …}` objects.
    public init(json: String, tools: String? = nil) throws {
        let parsed = try TemplateValue.parseJSON(json)
        guard case .array = parsed else { throw TemplateError("the messages must be a JSON array of objects with a role and a content") }
        try self.init(messages: parsed, tools: try tools.map { try TemplateValue.parseJSON($0) })
    }

    public init(roleContentPairs: [(role: String, content: String)]) {
        messages = .array(roleContentPairs.map { .object(TemplateValue.OrderedObject([("role", .string($0.role)), ("content", .string($0.content))])) })
        tools = nil
    }

    init(messages: TemplateValue, tools: TemplateValue?) throws {
        guard case .array(let items) = messages else { throw TemplateError("messages must be a list") }
        for (index, item) in items.enumerated() {
            guard case .object(let message) = item, case .string? = message["role"] else {
                throw TemplateError("message \(index + 1) needs a role (a string)")
            }
        }
        self.messages = messages
        self.tools = tools
    }

    /// The roles and string contents, in order.
    var roles: [String] {
        guard case .array(let items) = messages else { return [] }
        return items.map { item in
            if case .object(let message) = item, case .string(let role)? = message["role"] { return role }
            return ""
        }
    }

    /// The same chat with the content of message `index` replaced.
    func replacingContent(at index: Int, with content: String) -> ChatConversation {
        guard case .array(var items) = messages, case .object(var message) = items[index] else { return self }
        message["content"] = .string(content)
        items[index] = .object(message)
        return ChatConversation(unchecked: .array(items), tools: tools)
    }

    func content(at index: Int) -> String? {
        guard case .array(let items) = messages, case .object(let message) = items[index], case .string(let content)? = message["content"] else { return nil }
        return content
    }

    private init(unchecked messages: TemplateValue, tools: TemplateValue?) {
        self.messages = messages
        self.tools = tools
    }
}
