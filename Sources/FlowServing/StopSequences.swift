/// Cuts generated text at the first of the request's `stop` strings, and says how much of
/// it is safe to send so far: text that may be the start of a stop string, or that ends in
/// half a character (`U+FFFD` from a token that splits a UTF-8 sequence), is held back
/// until the next token tells. A value, tested without a model.
public struct StopSequences: Sendable {
    public let stops: [String]
    /// How many characters were handed out.
    public private(set) var sent = 0

    public init(_ stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
    }

    /// Given the whole text generated so far, the part not yet sent that may be sent, and
    /// whether a stop string came (the text is then final, cut before it).
    public mutating func next(_ text: String) -> (delta: String, stopped: Bool) {
        if let cut = firstStop(in: text) {
            let final = text[..<cut]
            defer { sent = final.count }
            return (String(final.dropFirst(sent)), true)
        }
        var safe = Substring(text)
        while safe.hasSuffix("\u{FFFD}") { safe = safe.dropLast() }
        // The longest end of the text that a stop string begins with waits.
        let held = stops.map { stop in (1..<max(stop.count, 1)).reversed().first { safe.hasSuffix(stop.prefix($0)) } ?? 0 }.max() ?? 0
        safe = safe.dropLast(held)
        guard safe.count > sent else { return ("", false) }
        defer { sent = safe.count }
        return (String(safe.dropFirst(sent)), false)
    }

    /// What is left to send once generation ended without a stop string.
    public mutating func finish(_ text: String) -> String {
        let rest = text.count > sent ? String(text.dropFirst(sent)) : ""
        sent = text.count
        return rest
    }

    private func firstStop(in text: String) -> String.Index? {
        stops.compactMap { text.range(of: $0)?.lowerBound }.min()
    }
}
