import Foundation

extension FlowJSON {
    /// `text` as a JSON string literal (RFC 8259): the quote, the backslash and control
    /// characters escaped, everything else as it is. For the places that put JSON together
    /// from parts they already hold as text: the journal's event payloads, the chat
    /// templates' `tojson`.
    public static func stringLiteral(_ text: String) -> String {
        var literal = "\""
        literal.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": literal += "\\\""
            case "\\": literal += "\\\\"
            case "\n": literal += "\\n"
            case "\r": literal += "\\r"
            case "\t": literal += "\\t"
            case "\u{8}": literal += "\\b"
            case "\u{C}": literal += "\\f"
            default:
                if scalar.value < 0x20 { literal += String(format: "\\u%04x", scalar.value) } else { literal.unicodeScalars.append(scalar) }
            }
        }
        return literal + "\""
    }
}
