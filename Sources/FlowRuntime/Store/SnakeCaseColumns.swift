import FlowCore
import GRDB

/// A GRDB record whose columns are its properties in snake case, converted as ``FlowJSON``
/// converts keys (`messageID` ↔ `message_id`), and whose dates are seconds since 1970
/// (`REAL`), as our stores have always kept them. GRDB's own snake-case decoding would
/// look for `messageId`.
public protocol SnakeCaseColumns: FetchableRecord, PersistableRecord, Codable {}

extension SnakeCaseColumns {
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy {
        .custom { key in JSONKeys.snakeCase(key.stringValue) }
    }

    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy {
        .custom { column in ColumnKey(stringValue: JSONKeys.swiftName(fromSnakeCase: column)) }
    }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
}

private struct ColumnKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
