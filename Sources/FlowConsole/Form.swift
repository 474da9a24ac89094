import Foundation
import NIOCore

/// The fields of a URL query or an `application/x-www-form-urlencoded` body. Empty fields
/// count as absent, values are cut at 500 characters, and a field given twice keeps its
/// first value.
struct Form: Sendable {
    private(set) var values: [String: String] = [:]

    init(query: String?) {
        for pair in (query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = Self.decode(parts[0]), !key.isEmpty, values[key] == nil else { continue }
            let value = parts.count > 1 ? Self.decode(parts[1]) ?? "" : ""
            if !value.isEmpty { values[key] = String(value.prefix(500)) }
        }
    }

    init(body: ByteBuffer) {
        self.init(query: String(buffer: body))
    }

    subscript(key: String) -> String? { values[key] }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// `key=value&…`, sorted, for links that keep a page's filters.
    static func encode(_ values: [String: String]) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return values.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }.map { key, value in
            "\(key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }.joined(separator: "&")
    }
}
