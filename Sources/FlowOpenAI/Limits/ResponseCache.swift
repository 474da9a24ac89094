import Crypto
import FlowCore
import Foundation

/// Chat responses on disk, keyed by a hash of the request (model, messages and every
/// parameter), kept for a time to live. A hit makes no call and costs nothing.
public struct ResponseCache: Sendable {
    public let folder: URL
    public let timeToLive: Duration

    public init(folder: URL, timeToLive: Duration) {
        self.folder = folder
        self.timeToLive = timeToLive
    }

    private struct Stored: Codable {
        var storedAt: Double
        var response: ChatResponse
    }

    /// The key of a request: the SHA-256 of its canonical JSON, streaming flags aside.
    public static func key(for request: ChatRequest) throws -> String {
        var canonical = request
        canonical.stream = nil
        canonical.streamOptions = nil
        let text = try JSONText(encoding: canonical).text
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    private func file(_ key: String) -> URL {
        folder.appendingPathComponent(String(key.prefix(2))).appendingPathComponent("\(key).json")
    }

    public func lookup(_ key: String, now: Date = Date()) -> ChatResponse? {
        guard let data = try? Data(contentsOf: file(key)), let stored = try? FlowJSON.decoder.decode(Stored.self, from: data) else { return nil }
        guard now.timeIntervalSince1970 - stored.storedAt < Double(timeToLive.wholeMilliseconds) / 1000 else {
            try? FileManager.default.removeItem(at: file(key))
            return nil
        }
        return stored.response
    }

    public func store(_ response: ChatResponse, key: String) {
        let target = file(key)
        try? FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        if let data = try? FlowJSON.encode(Stored(storedAt: Date().timeIntervalSince1970, response: response)) {
            try? data.write(to: target, options: .atomic)
        }
    }
}
