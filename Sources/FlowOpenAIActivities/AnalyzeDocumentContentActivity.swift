import FlowContracts
import FlowCore
import FlowOpenAI
import FlowRuntime
import Foundation

/// `analyze_document_content`: one call for a short document; for a long one, one call
/// per part (map) and one that combines their analyses (reduce).
public struct AnalyzeDocumentContentActivity: DeclaredActivity {
    public typealias Declaration = AnalyzeDocumentContent

    /// Parts analysed at once in the map step.
    static let mapConcurrency = 4
    let client: OpenAIClient

    public init(client: OpenAIClient) { self.client = client }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let text = input.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "'text' is empty: there is nothing to analyse") }
        let partSize = input.maxPartCharacters ?? 24_000
        guard partSize >= 500 else { throw ActivityFailure.nonRetryable(.invalidInput, "max_part_characters must be at least 500, got \(partSize)") }
        let calls = ModelCalls(client: client, model: input.model, useCache: input.useCache, rateKey: input.rateKey, context: context)
        let parts = Self.split(text, maximumCharacters: partSize)

        let analysis: AnalyzeDocumentContent.Analysis
        if parts.count == 1 {
            analysis = try await calls.ask(try PromptLibrary.prompt("analyze_document"), ["document_id": input.documentID, "text": text], as: AnalyzeDocumentContent.Analysis.self)
        } else {
            let chunkPrompt = try PromptLibrary.prompt("analyze_chunk")
            var partial = [AnalyzeDocumentContent.Analysis?](repeating: nil, count: parts.count)
            try await withThrowingTaskGroup(of: (Int, AnalyzeDocumentContent.Analysis).self) { group in
                var next = 0
                func addNext() throws {
                    guard next < parts.count else { return }
                    let index = next
                    next += 1
                    group.addTask {
                        let values = ["document_id": input.documentID, "part": "\(index + 1)", "parts": "\(parts.count)", "text": parts[index]]
                        return (index, try await calls.ask(chunkPrompt, values, as: AnalyzeDocumentContent.Analysis.self))
                    }
                }
                for _ in 0..<Self.mapConcurrency { try addNext() }
                var done = 0
                while let (index, result) = try await group.next() {
                    partial[index] = result
                    done += 1
                    await context.heartbeat(["parts_done": done, "parts": parts.count])
                    try addNext()
                }
            }
            analysis = try await calls.ask(
                try PromptLibrary.prompt("analyze_combine"),
                ["document_id": input.documentID, "parts": "\(parts.count)", "analyses": partial.compactMap { $0 }.promptJSON],
                as: AnalyzeDocumentContent.Analysis.self
            )
        }
        return Output(documentID: input.documentID, analysis: analysis, model: calls.model, parts: parts.count, promptVersions: calls.promptVersions, usage: calls.usage)
    }

    /// Parts of at most `maximumCharacters`, cut at paragraph ends, else at line ends,
    /// else at spaces, so no sentence is split where it can be helped.
    static func split(_ text: String, maximumCharacters: Int) -> [String] {
        var parts: [String] = []
        var rest = Substring(text)
        while rest.count > maximumCharacters {
            let window = rest.prefix(maximumCharacters)
            let cut = window.range(of: "\n\n", options: .backwards)?.upperBound
                ?? window.range(of: "\n", options: .backwards)?.upperBound
                ?? window.range(of: " ", options: .backwards)?.upperBound
                ?? window.endIndex
            let safeCut = cut > window.index(window.startIndex, offsetBy: maximumCharacters / 2) ? cut : window.endIndex
            parts.append(String(rest[..<safeCut]).trimmingCharacters(in: .whitespacesAndNewlines))
            rest = rest[safeCut...]
        }
        let last = rest.trimmingCharacters(in: .whitespacesAndNewlines)
        if !last.isEmpty || parts.isEmpty { parts.append(last) }
        return parts
    }
}
