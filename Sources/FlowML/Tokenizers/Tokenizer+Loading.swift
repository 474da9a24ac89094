import Foundation

/// Reading `tokenizer.json`. Anything the encoder would not reproduce exactly is refused
/// with the field that holds it, never encoded approximately.
extension Tokenizer {
    init(root: [String: Any], vocabulary exactVocabulary: [(String, Int)]) throws {
        guard let model = root["model"] as? [String: Any] else { throw TokenizerError("tokenizer.json has no model object") }
        let type = model["type"] as? String ?? "BPE"
        guard type == "BPE" else { throw TokenizerError("model.type \"\(type)\" is not supported: only BPE models are (Llama, Mistral, Qwen2)") }
        for field in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[field] as? String, !value.isEmpty {
                throw TokenizerError("model.\(field) \"\(value)\" is not supported")
            }
        }
        if let dropout = model["dropout"] as? NSNumber, dropout.doubleValue > 0 {
            throw TokenizerError("model.dropout \(dropout) is not supported: BPE dropout makes encoding random")
        }

        var vocabulary: [ScalarKey: Int] = [:]
        var tokensByID: [Int: String] = [:]
        for (token, id) in exactVocabulary {
            vocabulary[ScalarKey(token)] = id
            tokensByID[id] = token
        }

        var merges: [MergePair: Merge] = [:]
        for (rank, entry) in (model["merges"] as? [Any] ?? []).enumerated() {
            let pair: (String, String)
            if let parts = entry as? [String], parts.count == 2 {
                pair = (parts[0], parts[1])
            } else if let text = entry as? String, case let scalars = Array(text.unicodeScalars), let space = scalars.firstIndex(of: " ") {
                // The older "a b" form: split at the first space, scalar by scalar (a
                // combining mark after the space is its own scalar here, not part of it).
                pair = (String(scalars: scalars[..<space]), String(scalars: scalars[(space + 1)...]))
            } else {
                throw TokenizerError("model.merges[\(rank)] is neither [\"a\", \"b\"] nor \"a b\": \(entry)")
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
        for (index, token) in (root["added_tokens"] as? [[String: Any]] ?? []).enumerated() {
            guard let id = (token["id"] as? NSNumber)?.intValue, let content = token["content"] as? String else {
                throw TokenizerError("added_tokens[\(index)] needs an integer id and a string content")
            }
            let special = token["special"] as? Bool ?? false
            added.append(AddedTokens.Token(
                id: id, content: Array(content.unicodeScalars), special: special,
                singleWord: token["single_word"] as? Bool ?? false, leftStrip: token["lstrip"] as? Bool ?? false,
                rightStrip: token["rstrip"] as? Bool ?? false, normalized: token["normalized"] as? Bool ?? !special
            ))
            tokensByID[id] = content
        }

        self.vocabulary = vocabulary
        self.tokensByID = tokensByID
        self.merges = merges
        self.addedTokens = AddedTokens(added)
        self.byteFallback = model["byte_fallback"] as? Bool ?? false
        self.unknownTokenID = (model["unk_token"] as? String).flatMap { vocabulary[ScalarKey($0)] }
        self.fuseUnknown = model["fuse_unk"] as? Bool ?? false
        self.ignoreMerges = model["ignore_merges"] as? Bool ?? false
        self.byteTokenIDs = (0..<256).map { vocabulary[ScalarKey(String(format: "<0x%02X>", $0))] }
        self.normalizers = try Self.components(root["normalizer"], field: "normalizer", listKey: "normalizers").map(Self.normalizer)
        self.preTokenizers = try Self.components(root["pre_tokenizer"], field: "pre_tokenizer", listKey: "pretokenizers").map(Self.preTokenizer)
        self.decoders = try Self.components(root["decoder"], field: "decoder", listKey: "decoders").map(Self.decoder)
        self.postProcessor = try Self.components(root["post_processor"], field: "post_processor", listKey: "processors")
            .reduce(into: PostProcessor()) { processor, component in try Self.addPostProcessor(component, to: &processor) }
    }

    /// A component, or the members of a `Sequence`, each with its path for errors.
    private static func components(_ value: Any?, field: String, listKey: String) throws -> [(object: [String: Any], field: String)] {
        guard let value, !(value is NSNull) else { return [] }
        guard let object = value as? [String: Any] else { throw TokenizerError("\(field) is not an object") }
        guard object["type"] as? String == "Sequence" else { return [(object, field)] }
        guard let members = object[listKey] as? [[String: Any]] else { throw TokenizerError("\(field).\(listKey) is missing") }
        return members.enumerated().map { ($1, "\(field).\(listKey)[\($0)]") }
    }

    private static func unsupported(_ component: (object: [String: Any], field: String), supported: String) -> TokenizerError {
        TokenizerError("\(component.field).type \"\(component.object["type"] as? String ?? "?")\" is not supported (\(supported) are)")
    }

    private static func normalizer(_ component: (object: [String: Any], field: String)) throws -> Normalizer {
        let object = component.object
        switch object["type"] as? String {
        case "Prepend": return .prepend(Array((object["prepend"] as? String ?? "").unicodeScalars))
        case "Replace": return .replace(try pattern(component), Array((object["content"] as? String ?? "").unicodeScalars))
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Strip": return .strip(left: object["strip_left"] as? Bool ?? true, right: object["strip_right"] as? Bool ?? true)
        default: throw unsupported(component, supported: "Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip")
        }
    }

    private static func preTokenizer(_ component: (object: [String: Any], field: String)) throws -> PreTokenizer {
        let object = component.object
        switch object["type"] as? String {
        case "Split":
            let name = object["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: name) else { throw TokenizerError("\(component.field).behavior \"\(name)\" is not known") }
            return .split(try pattern(component), behavior: behavior, invert: object["invert"] as? Bool ?? false)
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: object["add_prefix_space"] as? Bool ?? true, useRegex: object["use_regex"] as? Bool ?? true)
        case "Metaspace":
            let scheme = try prependScheme(component)
            return .metaspace(replacement: try replacement(component), prependScheme: scheme, split: object["split"] as? Bool ?? true)
        case "WhitespaceSplit":
            return .whitespaceSplit
        default:
            throw unsupported(component, supported: "Split, ByteLevel, Metaspace, WhitespaceSplit")
        }
    }

    private static func decoder(_ component: (object: [String: Any], field: String)) throws -> Decoder {
        let object = component.object
        switch object["type"] as? String {
        case "ByteLevel": return .byteLevel
        case "Replace": return .replace(try pattern(component), Array((object["content"] as? String ?? "").unicodeScalars))
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            guard let content = (object["content"] as? String)?.unicodeScalars, content.count == 1 else {
                throw TokenizerError("\(component.field).content must be one character")
            }
            return .strip(content.first!, start: (object["start"] as? NSNumber)?.intValue ?? 0, stop: (object["stop"] as? NSNumber)?.intValue ?? 0)
        case "Metaspace":
            return .metaspace(replacement: try replacement(component), prependScheme: try prependScheme(component))
        default:
            throw unsupported(component, supported: "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace")
        }
    }

    private static func addPostProcessor(_ component: (object: [String: Any], field: String), to processor: inout PostProcessor) throws {
        let object = component.object
        switch object["type"] as? String {
        case "ByteLevel":
            return
        case "TemplateProcessing":
            guard let single = object["single"] as? [[String: Any]] else { throw TokenizerError("\(component.field).single is missing") }
            let specials = object["special_tokens"] as? [String: Any] ?? [:]
            var seenSequence = false
            for (index, piece) in single.enumerated() {
                if piece["Sequence"] != nil {
                    seenSequence = true
                } else if let token = (piece["SpecialToken"] as? [String: Any])?["id"] as? String {
                    guard let ids = (specials[token] as? [String: Any])?["ids"] as? [NSNumber] else {
                        throw TokenizerError("\(component.field).special_tokens has no ids for \"\(token)\"")
                    }
                    if seenSequence { processor.suffix += ids.map(\.intValue) } else { processor.prefix += ids.map(\.intValue) }
                } else {
                    throw TokenizerError("\(component.field).single[\(index)] is neither a Sequence nor a SpecialToken")
                }
            }
        case "RobertaProcessing", "BertProcessing":
            guard let cls = (object["cls"] as? [Any])?.last as? NSNumber, let sep = (object["sep"] as? [Any])?.last as? NSNumber else {
                throw TokenizerError("\(component.field) needs cls and sep as [token, id]")
            }
            processor.prefix.append(cls.intValue)
            processor.suffix.append(sep.intValue)
        default:
            throw unsupported(component, supported: "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing")
        }
    }

    private static func pattern(_ component: (object: [String: Any], field: String)) throws -> Pattern {
        let pattern = component.object["pattern"] as? [String: Any]
        if let literal = pattern?["String"] as? String { return .literal(Array(literal.unicodeScalars)) }
        if let source = pattern?["Regex"] as? String {
            do {
                return .regex(NSRegularExpressionBox(try NSRegularExpression(pattern: source)))
            } catch {
                throw TokenizerError("\(component.field).pattern.Regex does not compile: \(source)")
            }
        }
        throw TokenizerError("\(component.field).pattern needs {\"String\": …} or {\"Regex\": …}")
    }

    private static func replacement(_ component: (object: [String: Any], field: String)) throws -> Unicode.Scalar {
        let text = component.object["replacement"] as? String ?? "▁"
        guard text.unicodeScalars.count == 1 else { throw TokenizerError("\(component.field).replacement must be one character") }
        return text.unicodeScalars.first!
    }

    /// `prepend_scheme`, or the `add_prefix_space` older files have instead.
    private static func prependScheme(_ component: (object: [String: Any], field: String)) throws -> PrependScheme {
        guard let name = component.object["prepend_scheme"] as? String else {
            return (component.object["add_prefix_space"] as? Bool ?? true) ? .always : .never
        }
        guard let scheme = PrependScheme(rawValue: name) else {
            throw TokenizerError("\(component.field).prepend_scheme \"\(name)\" is not known (always, first, never are)")
        }
        return scheme
    }
}
