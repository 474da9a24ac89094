import Foundation

/// A value a workflow files itself under, for lists to filter by
/// (`flow workflow list --where 'document_format = "pdf"'`): text, a number or a truth
/// value. Its JSON form is the plain value.
public enum SearchAttribute: Sendable, Hashable, Codable, CustomStringConvertible {
    case text(String)
    case number(Double)
    case bool(Bool)

    /// The longest text a search attribute may hold.
    public static let maximumTextLength = 256

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .number(let number): try container.encode(number)
        case .bool(let bool): try container.encode(bool)
        }
    }

    public var description: String {
        switch self {
        case .text(let text): FlowJSON.stringLiteral(text)
        case .number(let number): number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .bool(let bool): String(bool)
        }
    }

    /// Checks a set of attributes a workflow files: keys of lower-case letters, digits and
    /// underscores (starting with a letter, at most 64), none of the names lists filter by
    /// already, and texts of at most ``maximumTextLength`` characters.
    public static func validate(_ attributes: [String: SearchAttribute?]) throws {
        for (key, value) in attributes {
            guard let first = key.unicodeScalars.first, ("a"..."z").contains(first), key.count <= 64,
                key.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
            else {
                throw ActivityFailure.nonRetryable(.invalidInput, "search attribute '\(key)': a key is lower-case letters, digits and underscores, starting with a letter, at most 64")
            }
            guard !WorkflowWhere.builtInKeys.contains(key) else {
                throw ActivityFailure.nonRetryable(.invalidInput, "search attribute '\(key)' is a name lists filter by already (\(WorkflowWhere.builtInKeys.sorted().joined(separator: ", ")))")
            }
            if case .text(let text)? = value, text.count > maximumTextLength {
                throw ActivityFailure.nonRetryable(.invalidInput, "search attribute '\(key)' holds \(text.count) characters, more than \(maximumTextLength)")
            }
        }
    }
}

/// A filter of workflows in a few words: clauses joined by `AND`, each a key, a comparison
/// (`=`, `!=`, `<`, `<=`, `>`, `>=`) and a value (`"text"`, `'text'`, a number, `true` or
/// `false`):
///
///     status = parked AND document_format = "pdf" AND pages >= 10
///
/// `status`, `name` and `started_at` (an ISO 8601 time) are the workflow's own; any other
/// key is a search attribute. `key != value` holds for a workflow without the key too.
public struct WorkflowWhere: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Comparison: String, Sendable, Equatable, Codable, CaseIterable {
        case equal = "="
        case notEqual = "!="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
    }

    public struct Clause: Sendable, Equatable, Codable {
        public var key: String
        public var comparison: Comparison
        public var value: SearchAttribute

        public init(key: String, comparison: Comparison, value: SearchAttribute) {
            self.key = key
            self.comparison = comparison
            self.value = value
        }
    }

    /// The keys that are the workflow's own, not search attributes.
    public static let builtInKeys: Set<String> = ["status", "name", "started_at", "id", "workflow_id"]

    public var clauses: [Clause]

    public init(clauses: [Clause]) {
        self.clauses = clauses
    }

    public var description: String {
        clauses.map { "\($0.key) \($0.comparison.rawValue) \($0.value)" }.joined(separator: " AND ")
    }

    /// Reads a filter; what it cannot read is an `InvalidInput` failure that says where.
    public static func parse(_ text: String) throws -> WorkflowWhere {
        var scanner = Scanner(Array(text.unicodeScalars))
        var clauses: [Clause] = []
        repeat {
            scanner.skipSpaces()
            let key = scanner.word()
            guard !key.isEmpty else { throw scanner.error("a key (a search attribute, status, name or started_at)", in: text) }
            scanner.skipSpaces()
            guard let comparison = scanner.comparison() else { throw scanner.error("one of = != < <= > >= after '\(key)'", in: text) }
            scanner.skipSpaces()
            guard let value = try scanner.value(in: text) else { throw scanner.error("a value: \"text\", a number, true or false", in: text) }
            clauses.append(Clause(key: key.lowercased(), comparison: comparison, value: value))
            scanner.skipSpaces()
        } while scanner.keyword("and")
        guard scanner.atEnd else { throw scanner.error("AND or the end", in: text) }
        return WorkflowWhere(clauses: clauses)
    }

    private struct Scanner {
        let characters: [Unicode.Scalar]
        var index = 0

        init(_ characters: [Unicode.Scalar]) { self.characters = characters }

        var atEnd: Bool { index >= characters.count }
        var current: Unicode.Scalar? { atEnd ? nil : characters[index] }

        mutating func skipSpaces() {
            while let character = current, character.properties.isWhitespace { index += 1 }
        }

        mutating func word() -> String {
            var word = ""
            while let character = current, character.properties.isAlphabetic || ("0"..."9").contains(character) || character == "_" || character == "." || character == "-" || character == ":" {
                word.unicodeScalars.append(character)
                index += 1
            }
            return word
        }

        mutating func comparison() -> Comparison? {
            for comparison in Comparison.allCases.sorted(by: { $0.rawValue.count > $1.rawValue.count }) {
                let scalars = Array(comparison.rawValue.unicodeScalars)
                if index + scalars.count <= characters.count, Array(characters[index..<index + scalars.count]) == scalars {
                    index += scalars.count
                    return comparison
                }
            }
            return nil
        }

        mutating func keyword(_ keyword: String) -> Bool {
            let start = index
            skipSpaces()
            if word().lowercased() == keyword { return true }
            index = start
            return false
        }

        mutating func value(in text: String) throws -> SearchAttribute? {
            if let quote = current, quote == "\"" || quote == "'" {
                index += 1
                var value = ""
                while let character = current, character != quote {
                    value.unicodeScalars.append(character)
                    index += 1
                }
                guard current == quote else { throw error("the closing \(quote) of a text", in: text) }
                index += 1
                return .text(value)
            }
            let word = word()
            switch word.lowercased() {
            case "": return nil
            case "true": return .bool(true)
            case "false": return .bool(false)
            default:
                if let number = Double(word) { return .number(number) }
                // Bare words are text: status = parked.
                return .text(word)
            }
        }

        func error(_ expected: String, in text: String) -> ActivityFailure {
            .nonRetryable(.invalidInput, "cannot read the filter '\(text)' at character \(index + 1): expected \(expected)")
        }
    }
}
