import FlowCore
import Foundation

/// An append-only JSON-lines record of every replay, purge and import (who, when, which
/// message, where to), and of the actions on workflows that select them by a filter. One line per message, written right after the broker confirmed the
/// change, so the log is accurate even when the tool is killed half-way.
public struct AuditLog: Sendable {
    public let file: URL

    public init(file: URL) {
        self.file = file
    }

    public func record(action: String, operatorName: String, messageID: String, destination: String?) throws {
        var entry = ["message_id": messageID]
        if let destination { entry["to"] = destination }
        try append(action: action, operatorName: operatorName, entry)
    }

    /// Records an operator's action on a workflow (`flow workflow cancel --where …`), with
    /// what came of it.
    public func record(action: String, operatorName: String, workflowID: String, outcome: String) throws {
        try append(action: action, operatorName: operatorName, ["workflow_id": workflowID, "outcome": outcome])
    }

    private func append(action: String, operatorName: String, _ fields: [String: String]) throws {
        var entry = fields
        entry["time"] = ISO8601DateFormatter().string(from: Date())
        entry["operator"] = operatorName
        entry["action"] = action
        let line = try FlowJSON.encodeText(entry) + "\n"
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: file.path) {
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(line.utf8))
    }

    /// Every entry so far.
    public func entries() throws -> [[String: String]] {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { line in
            try FlowJSON.decode([String: String].self, from: String(line))
        }
    }
}
