import FlowCore
import Foundation

/// CSV (RFC 4180: quoted fields, doubled quotes, newlines inside quotes) as text: one line
/// per row, `column: value` pairs, so a language model sees which value is which.
enum CSVText {
    static func extract(_ text: String, fileName: String) throws -> ExtractedDocument {
        let rows = try parse(text, fileName: fileName)
        guard let header = rows.first else {
            return ExtractedDocument(format: .csv, text: "", metadata: ["rows": "0", "columns": ""])
        }
        let lines = rows.dropFirst().map { row in
            zip(header, row).map { "\($0): \($1)" }.joined(separator: "; ")
        }
        return ExtractedDocument(
            format: .csv,
            text: lines.joined(separator: "\n"),
            metadata: ["rows": String(rows.count - 1), "columns": header.joined(separator: ",")]
        )
    }

    static func parse(_ text: String, fileName: String) throws -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var iterator = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar? = iterator.next()
        while let scalar = pending {
            pending = iterator.next()
            if inQuotes {
                if scalar == "\"" {
                    if pending == "\"" {
                        field.unicodeScalars.append("\"")
                        pending = iterator.next()
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty: inQuotes = true
            case ",":
                row.append(field)
                field = ""
            case "\r" where pending == "\n": continue
            case "\n", "\r":
                row.append(field)
                field = ""
                if !(row.count == 1 && row[0].isEmpty) { rows.append(row) }
                row = []
            default: field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes {
            throw DocumentError(.corrupt, "\(fileName) ends inside a quoted CSV field: a closing quote is missing")
        }
        if !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows
    }
}
