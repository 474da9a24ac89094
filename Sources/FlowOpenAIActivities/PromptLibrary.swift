import FlowCore
import Foundation
import Synchronization

/// A versioned prompt from `Prompts/`: a system message, a user template with
/// `{{placeholders}}`, and the JSON schema its answer must follow.
public struct Prompt: Sendable {
    public let name: String
    /// `name@n`, recorded in every reply the prompt produced.
    public let version: String
    public let system: String
    public let userTemplate: String
    public let schemaName: String
    public let schema: JSONText

    /// The user message with every placeholder filled in.
    public func user(_ values: [String: String]) throws -> String {
        var text = userTemplate
        for (key, value) in values { text = text.replacingOccurrences(of: "{{\(key)}}", with: value) }
        if let range = text.range(of: "{{"), let end = text[range.upperBound...].range(of: "}}") {
            throw ActivityFailure.nonRetryable(.promptError, "prompt \(version) has no value for {{\(text[range.upperBound..<end.lowerBound])}}")
        }
        return text
    }
}

/// The prompts shipped with the OpenAI actor, read once from the module's resources.
public enum PromptLibrary {
    private static let loaded = Mutex<[String: Prompt]>([:])

    public static func prompt(_ name: String) throws -> Prompt {
        if let prompt = loaded.withLock({ $0[name] }) { return prompt }
        let prompt = try load(name)
        loaded.withLock { $0[name] = prompt }
        return prompt
    }

    private static func load(_ name: String) throws -> Prompt {
        guard let url = Bundle.module.url(forResource: name, withExtension: "md", subdirectory: "Prompts"),
              let text = try? String(contentsOf: url, encoding: .utf8)
        else {
            throw ActivityFailure.nonRetryable(.promptError, "prompt \(name) is missing from the build (Sources/FlowOpenAIActivities/Prompts/\(name).md)")
        }
        return try parse(name: name, text: text)
    }

    static func parse(name: String, text: String) throws -> Prompt {
        let lines = text.components(separatedBy: "\n")
        guard lines.first == "---", let close = lines.dropFirst().firstIndex(of: "---") else {
            throw ActivityFailure.nonRetryable(.promptError, "prompt \(name) must start with front matter (--- version: ... schema: ... ---)")
        }
        var fields: [String: String] = [:]
        for line in lines[1..<close] {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        var sections: [String: [String]] = [:]
        var current: String?
        for line in lines[(close + 1)...] {
            if line.hasPrefix("## ") {
                current = String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces)
                sections[current!] = []
            } else if let current {
                sections[current]!.append(line)
            }
        }
        guard let version = fields["version"], let schemaName = fields["schema"],
              let system = sections["system"], let user = sections["user"]
        else {
            throw ActivityFailure.nonRetryable(.promptError, "prompt \(name) needs version and schema in its front matter and ## system and ## user sections")
        }
        guard let schemaURL = Bundle.module.url(forResource: schemaName, withExtension: "json", subdirectory: "Prompts/schemas"),
              let schemaText = try? String(contentsOf: schemaURL, encoding: .utf8)
        else {
            throw ActivityFailure.nonRetryable(.promptError, "schema \(schemaName) of prompt \(name) is missing (Prompts/schemas/\(schemaName).json)")
        }
        return Prompt(
            name: name, version: version, system: system.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines),
            userTemplate: user.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines), schemaName: schemaName,
            schema: try JSONText(validating: schemaText)
        )
    }
}
