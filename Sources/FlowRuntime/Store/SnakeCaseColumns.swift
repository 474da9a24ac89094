import GRDB

/// A GRDB record whose columns are its properties in snake case, with `ID` as one word
/// (`messageID` ↔ `message_id`), and whose dates are seconds since 1970 (`REAL`), as our
/// stores have always kept them. GRDB's own snake-case decoding would look for `messageId`.
public protocol SnakeCaseColumns: FetchableRecord, PersistableRecord, Codable {}

extension SnakeCaseColumns {
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }

    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy {
        .custom { column in SnakeCaseKey(stringValue: SnakeCaseKey.camelCase(column)) }
    }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
}

struct SnakeCaseKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }

    /// `message_id` → `messageID`, `parked_reason` → `parkedReason`.
    static func camelCase(_ column: String) -> String {
        let words = column.split(separator: "_")
        guard let first = words.first else { return column }
        return String(first) + words.dropFirst().map { $0 == "id" ? "ID" : $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
}
