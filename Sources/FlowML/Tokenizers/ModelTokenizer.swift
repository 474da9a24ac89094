import Foundation

/// A model folder's tokenizer as Transformers loads it: `tokenizer.json`, with the special
/// tokens, `add_bos_token` / `add_eos_token` and the chat template of
/// `tokenizer_config.json`.
public struct ModelTokenizer: Sendable {
    public let tokenizer: Tokenizer
    public let bosToken: String?
    public let eosToken: String?
    /// The model's own template, or ChatML when the folder has none (`usesDefaultTemplate`).
    public let chatTemplate: ChatTemplate
    public let usesDefaultTemplate: Bool
    /// What `add_special_tokens=True` puts around a text.
    let specialPrefix: [Int]
    let specialSuffix: [Int]

    /// Reads `tokenizer.json` and, when present, `tokenizer_config.json` of `folder`.
    public init(folder: URL) throws {
        let tokenizer = try Tokenizer(contentsOf: folder.appendingPathComponent("tokenizer.json"))
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        var config = TemplateValue.OrderedObject()
        if FileManager.default.fileExists(atPath: configURL.path) {
            guard let data = try? Data(contentsOf: configURL), let object = (try? OrderedJSON.parse(Array(data)))?.objectValue else {
                throw TokenizerError("\(configURL.path) is not a JSON object")
            }
            config = object
        }
        try self.init(tokenizer: tokenizer, config: config)
    }

    /// A bare `tokenizer.json` with no configuration: no chat template of its own.
    public init(tokenizer: Tokenizer) {
        // A configuration without fields cannot fail to load.
        try! self.init(tokenizer: tokenizer, config: TemplateValue.OrderedObject())
    }

    init(tokenizer: Tokenizer, config: TemplateValue.OrderedObject) throws {
        self.tokenizer = tokenizer
        func tokenText(_ field: String) throws -> String? {
            switch config[field] {
            case nil, .none?: return nil
            case .string(let text)?: return text
            case .object(let object)?:
                guard let content = object["content"]?.stringValue else { throw TokenizerError("tokenizer_config.json: \(field).content must be a string") }
                return content
            default: throw TokenizerError("tokenizer_config.json: \(field) must be a string or an object with a content")
            }
        }
        bosToken = try tokenText("bos_token")
        eosToken = try tokenText("eos_token")

        switch config["chat_template"] {
        case nil, .none?:
            chatTemplate = .chatML
            usesDefaultTemplate = true
        case .string(let source)?:
            chatTemplate = try ChatTemplate(source)
            usesDefaultTemplate = false
        case .array(let list)?:
            let named = list.compactMap(\.objectValue)
            guard let source = (named.first { $0["name"]?.stringValue == "default" } ?? named.first)?["template"]?.stringValue else {
                throw TokenizerError("tokenizer_config.json: chat_template is a list without a default template")
            }
            chatTemplate = try ChatTemplate(source)
            usesDefaultTemplate = false
        default:
            throw TokenizerError("tokenizer_config.json: chat_template must be a string or a list of {name, template}")
        }

        // Transformers 4's Llama-family tokenizers rebuild the post-processor from these two
        // flags at load, a flag left out keeping its default (BOS on, EOS off); other
        // classes, and Transformers 5, keep tokenizer.json's post-processor. The
        // checkpoints people have were saved with the two in agreement.
        let rebuildsFromFlags = Self.flagClasses.contains(config["tokenizer_class"]?.stringValue ?? "")
        func side(_ flag: String, token: String?, byDefault: Bool, otherwise: [Int]) throws -> [Int] {
            guard rebuildsFromFlags else { return otherwise }
            guard config[flag]?.boolValue ?? byDefault else { return [] }
            guard let token, let id = tokenizer.id(of: token) else {
                throw TokenizerError("tokenizer_config.json sets \(flag) but its token \(token ?? "(none)") is not in the vocabulary")
            }
            return [id]
        }
        specialPrefix = try side("add_bos_token", token: bosToken, byDefault: true, otherwise: tokenizer.postProcessor.prefix)
        specialSuffix = try side("add_eos_token", token: eosToken, byDefault: false, otherwise: tokenizer.postProcessor.suffix)
    }

    /// The `tokenizer_class` values whose Transformers 4 tokenizers apply `add_bos_token`
    /// and `add_eos_token` themselves.
    static let flagClasses: Set<String> = [
        "LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast",
    ]

    public var eosTokenID: Int? { eosToken.flatMap(tokenizer.id(of:)) }

    /// `tokenizer(text, add_special_tokens=...)["input_ids"]`.
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        let ids = tokenizer.encode(text)
        return addSpecialTokens ? specialPrefix + ids + specialSuffix : ids
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens)
    }

    /// `apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`.
    public func renderChat(_ conversation: ChatConversation, addGenerationPrompt: Bool) throws -> String {
        var specialTokens: [String: String] = [:]
        if let bosToken { specialTokens["bos_token"] = bosToken }
        if let eosToken { specialTokens["eos_token"] = eosToken }
        return try chatTemplate.render(conversation, addGenerationPrompt: addGenerationPrompt, specialTokens: specialTokens)
    }

    /// `apply_chat_template(messages, tokenize=True, ...)`: the rendered text encoded with
    /// no special tokens added (the template writes its own).
    public func encodeChat(_ conversation: ChatConversation, addGenerationPrompt: Bool) throws -> [Int] {
        tokenizer.encode(try renderChat(conversation, addGenerationPrompt: addGenerationPrompt))
    }
}
