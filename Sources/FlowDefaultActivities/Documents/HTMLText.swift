import Foundation

/// Text of an HTML page without markup, scripts and styles, with entities decoded and
/// block elements turned into line breaks.
enum HTMLText {
    static func extract(_ html: String) -> ExtractedDocument {
        var metadata: [String: String] = [:]
        if let title = firstMatch(in: html, open: "<title", close: "</title>") {
            metadata["title"] = decodeEntities(stripTags(title)).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var text = html
        for element in ["script", "style", "noscript", "template", "head"] {
            text = removeElements(element, from: text)
        }
        text = text.replacingOccurrences(of: "<!--[\\s\\S]*?-->", with: "", options: .regularExpression)
        text = text.replacingOccurrences(of: "<br\\s*/?>", with: "\n", options: [.regularExpression, .caseInsensitive])
        text = text.replacingOccurrences(
            of: "</(p|div|h[1-6]|li|tr|section|article|header|footer|blockquote|pre|table|ul|ol)\\s*>", with: "\n",
            options: [.regularExpression, .caseInsensitive]
        )
        text = decodeEntities(stripTags(text))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "[ \t\u{00A0}]+", with: " ", options: .regularExpression).trimmingCharacters(in: .whitespaces)
        }
        var collapsed: [String] = []
        for line in lines where !(line.isEmpty && (collapsed.last?.isEmpty ?? true)) { collapsed.append(line) }
        return ExtractedDocument(format: .html, text: collapsed.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines), metadata: metadata)
    }

    private static func stripTags(_ text: String) -> String {
        text.replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression)
    }

    private static func removeElements(_ name: String, from text: String) -> String {
        text.replacingOccurrences(of: "<\(name)\\b[^>]*>[\\s\\S]*?</\(name)\\s*>", with: "", options: [.regularExpression, .caseInsensitive])
    }

    private static func firstMatch(in text: String, open: String, close: String) -> String? {
        guard let start = text.range(of: open, options: .caseInsensitive),
            let tagEnd = text.range(of: ">", range: start.upperBound..<text.endIndex),
            let end = text.range(of: close, options: .caseInsensitive, range: tagEnd.upperBound..<text.endIndex)
        else { return nil }
        return String(text[tagEnd.upperBound..<end.lowerBound])
    }

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        let named: [String: String] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{00A0}", "mdash": "—", "ndash": "–", "hellip": "…", "copy": "©"]
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == "&", let semicolon = text[index...].prefix(12).firstIndex(of: ";") {
                let entity = String(text[text.index(after: index)..<semicolon])
                var replacement: String?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    replacement = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                } else if entity.hasPrefix("#") {
                    replacement = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                } else {
                    replacement = named[entity]
                }
                if let replacement {
                    result += replacement
                    index = text.index(after: semicolon)
                    continue
                }
            }
            result.append(text[index])
            index = text.index(after: index)
        }
        return result
    }
}
