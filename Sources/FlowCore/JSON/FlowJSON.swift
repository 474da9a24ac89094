import Foundation
import Synchronization

/// The one JSON convention of the project, for the wire, the stores and the files we write.
///
/// - Keys are snake case: Swift's `messageID` is `message_id`. Acronyms are one word both
///   ways (``JSONKeys``), which Foundation's own strategies do not do (`messageIDs` would
///   be `message_i_ds`, and `message_id` would read back as `messageId`).
/// - Dictionary keys are data, not names, and are never converted.
/// - Keys are sorted and slashes are not escaped, so equal values give equal text.
/// - Dates are ISO 8601 in UTC with milliseconds (`2026-12-02T10:00:00.250Z`). Reading
///   also takes ISO 8601 without a fraction, and the seconds since 2001 that values
///   written before this convention carry.
///
/// A `CodingKeys` case is written only where a key really differs from its property's
/// name, and then in camel case (`case maximumSteps = "maxSteps"` for `max_steps`),
/// because the strategies convert the case's string too.
public enum FlowJSON {
    /// Compact text: for messages, stores and digests.
    public static let encoder: JSONEncoder = makeEncoder(pretty: false)
    /// Indented text: for files people read and for what the CLI prints.
    public static let prettyEncoder: JSONEncoder = makeEncoder(pretty: true)
    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in JSONKeys.Key(JSONKeys.cachedSwiftName(fromSnakeCase: path[path.count - 1].stringValue)) }
        decoder.dateDecodingStrategy = .custom { decoder in try JSONDates.decode(from: decoder) }
        return decoder
    }()

    /// The value as compact JSON.
    public static func encode<Value: Encodable>(_ value: Value) throws -> Data {
        try encoder.encode(value)
    }

    /// The value as compact JSON, as a message body.
    public static func encodeBytes<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        Array(try encoder.encode(value))
    }

    /// The value as JSON text, compact or indented.
    public static func encodeText<Value: Encodable>(_ value: Value, pretty: Bool = false) throws -> String {
        String(decoding: try (pretty ? prettyEncoder : encoder).encode(value), as: UTF8.self)
    }

    /// Reads a value from JSON; throws `DecodingError`, which ``describe(_:)`` puts in words.
    public static func decode<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value {
        try decoder.decode(type, from: data)
    }

    /// Reads a value from a message body.
    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        try decoder.decode(type, from: Data(bytes))
    }

    /// Reads a value from JSON text.
    public static func decode<Value: Decodable>(_ type: Value.Type, from text: String) throws -> Value {
        try decoder.decode(type, from: Data(text.utf8))
    }

    /// Reads a JSON file as a value of the given type.
    public static func decode<Value: Decodable>(_ type: Value.Type, contentsOf url: URL) throws -> Value {
        try decoder.decode(type, from: Data(contentsOf: url))
    }

    private static func makeEncoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .custom { path in JSONKeys.Key(JSONKeys.cachedSnakeCase(path[path.count - 1].stringValue)) }
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(JSONDates.text(date))
        }
        return encoder
    }
}

/// The key conversion of ``FlowJSON``, shared with the stores' column names.
public enum JSONKeys {
    /// Words written in capitals in Swift names, as the API guidelines ask.
    static let acronyms: [String: String] = [
        "id": "ID", "ids": "IDs", "url": "URL", "urls": "URLs", "usd": "USD", "json": "JSON", "http": "HTTP",
        "api": "API", "ttl": "TTL", "tls": "TLS", "utf8": "UTF8", "ok": "OK", "ml": "ML",
    ]

    /// The conversions made so far, both ways. Keys come from a few hundred property names,
    /// and every message converts each of its keys: looking one up costs a fraction of
    /// converting it again. Past the bound (a sender inventing keys), nothing more is kept.
    private static let cache = Mutex<(snake: [String: String], swift: [String: String])>(([:], [:]))
    private static let cacheBound = 4096

    static func cachedSnakeCase(_ name: String) -> String {
        if let known = cache.withLock({ $0.snake[name] }) { return known }
        let converted = snakeCase(name)
        cache.withLock { if $0.snake.count < cacheBound { $0.snake[name] = converted } }
        return converted
    }

    static func cachedSwiftName(fromSnakeCase key: String) -> String {
        if let known = cache.withLock({ $0.swift[key] }) { return known }
        let converted = swiftName(fromSnakeCase: key)
        cache.withLock { if $0.swift.count < cacheBound { $0.swift[key] = converted } }
        return converted
    }

    /// `messageID` → `message_id`, `blobIDs` → `blob_ids`, `costUSD` → `cost_usd`,
    /// `retryAfterMs` → `retry_after_ms`. A name with no capital is returned as it is.
    public static func snakeCase(_ name: String) -> String {
        guard name.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return name }
        let characters = Array(name)
        var words: [String] = []
        var word = ""
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character.isUppercase, !word.isEmpty || index > 0 {
                if let acronym = acronym(in: characters, at: index) {
                    if !word.isEmpty { words.append(word) }
                    words.append(acronym.lowercased())
                    word = ""
                    index += acronym.count
                    continue
                }
                if !word.isEmpty { words.append(word) }
                word = ""
            }
            word.append(Character(character.lowercased()))
            index += 1
        }
        if !word.isEmpty { words.append(word) }
        return words.joined(separator: "_")
    }

    /// `message_id` → `messageID`, `parked_reason` → `parkedReason`. A key with no
    /// underscore is returned as it is, so camel-case keys written before the convention
    /// still read.
    public static func swiftName(fromSnakeCase key: String) -> String {
        guard key.utf8.contains(UInt8(ascii: "_")) else { return key }
        let words = key.split(separator: "_", omittingEmptySubsequences: true)
        guard let first = words.first, !key.hasPrefix("_") else { return key }
        return String(first) + words.dropFirst().map { word in
            acronyms[String(word)] ?? word.prefix(1).uppercased() + word.dropFirst()
        }.joined()
    }

    /// The acronym written at `index` (`ID` in `messageIDs`), when it ends a word there:
    /// at the end, or before a capital or a digit.
    private static func acronym(in characters: [Character], at index: Int) -> String? {
        for candidate in acronymsLongestFirst where index + candidate.count <= characters.count {
            guard String(characters[index..<index + candidate.count]) == candidate else { continue }
            let end = index + candidate.count
            if end == characters.count || characters[end].isUppercase { return candidate }
        }
        return nil
    }

    private static let acronymsLongestFirst = acronyms.values.sorted { $0.count > $1.count }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }

        init(_ stringValue: String) { self.stringValue = stringValue }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// Dates as ``FlowJSON`` writes and reads them.
public enum JSONDates {
    /// ISO 8601 in UTC with milliseconds, rounded to the nearest millisecond so a value
    /// read back writes the same text.
    public static func text(_ date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
        let seconds = (milliseconds / 1000).rounded(.down)
        let fraction = Int(milliseconds - seconds * 1000)
        let whole = Date(timeIntervalSince1970: seconds).formatted(.iso8601)
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Reads ISO 8601 with or without a fraction of a second, or a number of seconds
    /// since 2001 (what `JSONEncoder` wrote by default before the convention).
    public static func date(_ text: String) -> Date? {
        var whole = text
        var fraction = 0.0
        if let dot = text.firstIndex(of: "."), let zone = text[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
            let digits = text[text.index(after: dot)..<zone]
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = Double("0." + digits) else { return nil }
            fraction = value
            whole = String(text[..<dot]) + text[zone...]
        }
        guard let date = try? Date(whole, strategy: .iso8601) else { return nil }
        return Date(timeIntervalSince1970: ((date.timeIntervalSince1970 + fraction) * 1000).rounded() / 1000)
    }

    static func decode(from decoder: any Decoder) throws -> Date {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            return Date(timeIntervalSinceReferenceDate: seconds)
        }
        let text = try container.decode(String.self)
        guard let date = date(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an ISO 8601 date such as 2026-12-02T10:00:00.250Z")
        }
        return date
    }
}

extension FlowJSON {
    /// A decoding error in words: which field, named as on the wire, and what was wrong
    /// with it (`field 'blob_id' is missing`, `'chunks.[2].start' should be Int`).
    public static func describe(_ error: DecodingError) -> String {
        func name(_ key: any CodingKey) -> String { key.intValue.map { "[\($0)]" } ?? JSONKeys.snakeCase(key.stringValue) }
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "the top level" : "'" + codingPath.map(name).joined(separator: ".") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "field '\(name(key))' is missing\(parent)"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) should be \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) is null but should be \(type)"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
