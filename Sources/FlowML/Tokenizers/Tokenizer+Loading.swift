import Foundation

/// Reading `tokenizer.json`. Anything the encoder would not reproduce exactly is refused
/// with the field that holds it, never encoded approximately.
extension Tokenizer {
    init(root: TemplateValue.OrderedObject) throws {
        guard let model = root["model"]?.objectValue else { throw TokenizerError("tokenizer.json has no model object") }
        let type = model["type"]?.stringValue ?? "BPE"
        guard type == "BPE" else { throw TokenizerError("model.type \"\(type)\" is not supported: only BPE models are (Llama, Mistral, Qwen2)") }
        for field in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[field]?.stringValue, !value.isEmpty {
                throw TokenizerError("model.\(field) \"\(value)\" is not supported")
            }
        }
        if let dropout = model["dropout"]?.doubleValue, dropout > 0 {
            throw TokenizerError("model.dropout \(dropout) is not supported: BPE dropout makes encoding random")
        }
        guard let vocabularyObject = model["vocab"]?.objectValue else { throw TokenizerError("model.vocab is missing or not an object") }

        var vocabulary: [ScalarKey: Int] = [:]
        var tokensByID: [Int: String] = [:]
        for (token, value) in vocabularyObject.pairs {
            guard let id = value.intValue else { throw TokenizerError("model.vocab[\(token.debugDescription)] is not an integer id") }
            vocabulary[ScalarKey(token)] = id
            tokensByID[id] = token
        }

        var merges: [MergePair: Merge] = [:]
        for (rank, entry) in (model["merges"]?.arrayValue ?? []).enumerated() {
            let pair: (String, String)
            if let parts = entry.arrayValue?.compactMap(\.stringValue), parts.count == 2 {
                pair = (parts[0], parts[1])
            } else if let text = entry.stringValue, case let scalars = Array(text.unicodeScalars), let space = scalars.firstIndex(of: " ") {
                // The older "a b" form: split at the first space, scalar by scalar (a
                // combining mark after the space is its own scalar here, not part of it).
                pair = (String(scalars: scalars[..<space]), String(scalars: scalars[(space + 1)...]))
            } else {
                throw TokenizerError("model.merges[\(rank)] is neither [\"a\", \"b\"] nor \"a b\": \(entry.representation)")
            }
            guard let left = vocabulary[ScalarKey(pair.0)], let right = vocabulary[ScalarKey(pair.1)],
                  let merged = vocabulary[ScalarKey(pair.0 + pair.1)]
            else {
                throw TokenizerError("model.merges[\(rank)] (\(pair.0.debugDescription), \(pair.1.debugDescription)) names a token that is not in model.vocab")
            }
            let key = MergePair(left: left, right: right)
            if merges[key] == nil { merges[key] = Merge(rank: rank, merged: merged) }
        }

        var added: [AddedTokens.Token] = []
        for (index, entry) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let token = entry.objectValue, let id = token["id"]?.intValue, let content = token["content"]?.stringValue else {
                throw TokenizerError("added_tokens[\(index)] needs an integer id and a string content")
            }
            let special = token["special"]?.boolValue ?? false
            added.append(AddedTokens.Token(
                id: id, content: Array(content.unicodeScalars), special: special,
                singleWord: token["single_word"]?.boolValue ?? false, leftStrip: token["lstrip"]?.boolValue ?? false,
                rightStrip: token["rstrip"]?.boolValue ?? false, normalized: token["normalized"]?.boolValue ?? !special
            ))
            tokensByID[id] = content
        }

        self.vocabulary = vocabulary
        self.tokensByID = tokensByID
        self.merges = merges
        self.addedTokens = AddedTokens(added)
        self.byteFallback = model["byte_fallback"]?.boolValue ?? false
        self.unknownTokenID = model["unk_token"]?.stringValue.flatMap { vocabulary[ScalarKey($0)] }
        self.fuseUnknown = model["fuse_unk"]?.boolValue ?? false
        self.ignoreMerges = model["ignore_merges"]?.boolValue ?? false
        self.byteTokenIDs = (0..<256).map { vocabulary[ScalarKey(String(format: "<0x%02X>", $0))] }
        self.normalizers = try Self.components(root["normalizer"], field: "normalizer", listKey: "normalizers").map(Self.normalizer)
        self.preTokenizers = try Self.components(root["pre_tokenizer"], field: "pre_tokenizer", listKey: "pretokenizers").map(Self.preTokenizer)
        self.decoders = try Self.components(root["decoder"], field: "decoder", listKey: "decoders").map(Self.decoder)
        self.postProcessor = try Self.components(root["post_processor"], field: "post_processor", listKey: "processors")
            .reduce(into: PostProcessor()) { processor, component in try Self.addPostProcessor(component, to: &processor) }
    }

    /// A part of the pipeline and where it stands in the file, for errors.
    typealias Component = (object: TemplateValue.OrderedObject, field: String)

    /// A component, or the members of a `Sequence`, each with its path for errors.
    private static func components(_ value: TemplateValue?, field: String, listKey: String) throws -> [Component] {
        guard let value, !value.isNone else { return [] }
        guard let object = value.objectValue else { throw TokenizerError("\(field) is not an object") }
        guard object["type"]?.stringValue == "Sequence" else { return [(object, field)] }
        guard let members = object[listKey]?.arrayValue else { throw TokenizerError("\(field).\(listKey) is missing") }
        return try members.enumerated().map { index, member in
            guard let object = member.objectValue else { throw TokenizerError("\(field).\(listKey)[\(index)] is not an object") }
            return (object, "\(field).\(listKey)[\(index)]")
        }
    }

    private static func unsupported(_ component: Component, supported: String) -> TokenizerError {
        TokenizerError("\(component.field).type \"\(component.object["type"]?.stringValue ?? "?")\" is not supported (\(supported) are)")
    }

    private static func normalizer(_ component: Component) throws -> Normalizer {
        let object = component.object
        switch object["type"]?.stringValue {
        case "Prepend": return .prepend(Array((object["prepend"]?.stringValue ?? "").unicodeScalars))
        case "Replace": return .replace(try pattern(component), Array((object["content"]?.stringValue ?? "").unicodeScalars))
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Strip": return .strip(left: object["strip_left"]?.boolValue ?? true, right: object["strip_right"]?.boolValue ?? true)
        default: throw unsupported(component, supported: "Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip")
        }
    }

    private static func preTokenizer(_ component: Component) throws -> PreTokenizer {
        let object = component.object
        switch object["type"]?.stringValue {
        case "Split":
            let name = object["behavior"]?.stringValue ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: name) else { throw TokenizerError("\(component.field).behavior \"\(name)\" is not known") }
            return .split(try pattern(component), behavior: behavior, invert: object["invert"]?.boolValue ?? false)
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: object["add_prefix_space"]?.boolValue ?? true, useRegex: object["use_regex"]?.boolValue ?? true)
        case "Metaspace":
            let scheme = try prependScheme(component)
            return .metaspace(replacement: try replacement(component), prependScheme: scheme, split: object["split"]?.boolValue ?? true)
        case "WhitespaceSplit":
            return .whitespaceSplit
        default:
            throw unsupported(component, supported: "Split, ByteLevel, Metaspace, WhitespaceSplit")
        }
    }

    private static func decoder(_ component: Component) throws -> Decoder {
        let object = component.object
        switch object["type"]?.stringValue {
        case "ByteLevel": return .byteLevel
        case "Replace": return .replace(try pattern(component), Array((object["content"]?.stringValue ?? "").unicodeScalars))
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            guard let content = object["content"]?.stringValue?.unicodeScalars, content.count == 1 else {
                throw TokenizerError("\(component.field).content must be one character")
            }
            return .strip(content.first!, start: object["start"]?.intValue ?? 0, stop: object["stop"]?.intValue ?? 0)
        case "Metaspace":
            return .metaspace(replacement: try replacement(component), prependScheme: try prependScheme(component))
        default:
            throw unsupported(component, supported: "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace")
        }
    }

    private static func addPostProcessor(_ component: Component, to processor: inout PostProcessor) throws {
        let object = component.object
        switch object["type"]?.stringValue {
        case "ByteLevel":
            return
        case "TemplateProcessing":
            guard let single = object["single"]?.arrayValue else { throw TokenizerError("\(component.field).single is missing") }
            let specials = object["special_tokens"]?.objectValue ?? .init()
            var seenSequence = false
            for (index, piece) in single.enumerated() {
                if piece.objectValue?["Sequence"] != nil {
                    seenSequence = true
                } else if let token = piece.objectValue?["SpecialToken"]?.objectValue?["id"]?.stringValue {
                    guard let ids = specials[token]?.objectValue?["ids"]?.arrayValue?.compactMap(\.intValue) else {
                        throw TokenizerError("\(component.field).special_tokens has no ids for \"\(token)\"")
                    }
                    if seenSequence { processor.suffix += ids } else { processor.prefix += ids }
                } else {
                    throw TokenizerError("\(component.field).single[\(index)] is neither a Sequence nor a SpecialToken")
                }
            }
        case "RobertaProcessing", "BertProcessing":
            guard let cls = object["cls"]?.arrayValue?.last?.intValue, let sep = object["sep"]?.arrayValue?.last?.intValue else {
                throw TokenizerError("\(component.field) needs cls and sep as [token, id]")
            }
            processor.prefix.append(cls)
            processor.suffix.append(sep)
        default:
            throw unsupported(component, supported: "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing")
        }
    }

    private static func pattern(_ component: Component) throws -> Pattern {
        let pattern = component.object["pattern"]?.objectValue
        if let literal = pattern?["String"]?.stringValue { return .literal(Array(literal.unicodeScalars)) }
        if let source = pattern?["Regex"]?.stringValue {
            do {
                return .regex(NSRegularExpressionBox(try NSRegularExpression(pattern: source)))
            } catch {
                throw TokenizerError("\(component.field).pattern.Regex does not compile: \(source)")
            }
        }
        throw TokenizerError("\(component.field).pattern needs {\"String\": …} or {\"Regex\": …}")
    }

    private static func replacement(_ component: Component) throws -> Unicode.Scalar {
        let text = component.object["replacement"]?.stringValue ?? "▁"
        guard text.unicodeScalars.count == 1 else { throw TokenizerError("\(component.field).replacement must be one character") }
        return text.unicodeScalars.first!
    }

    /// `prepend_scheme`, or the `add_prefix_space` older files have instead.
    private static func prependScheme(_ component: Component) throws -> PrependScheme {
        guard let name = component.object["prepend_scheme"]?.stringValue else {
            return (component.object["add_prefix_space"]?.boolValue ?? true) ? .always : .never
        }
        guard let scheme = PrependScheme(rawValue: name) else {
            throw TokenizerError("\(component.field).prepend_scheme \"\(name)\" is not known (always, first, never are)")
        }
        return scheme
    }
}
