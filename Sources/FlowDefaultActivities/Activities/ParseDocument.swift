import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// Runs ``ParseDocument`` (`FlowContracts`).
public struct ParseDocumentActivity: DeclaredActivity {
    public typealias Declaration = ParseDocument
    public typealias Input = ParseDocument.Input
    public typealias Output = ParseDocument.Output
    typealias Section = ParseDocument.Section
    typealias Chunk = ParseDocument.Chunk

    let blobs: BlobStore

    public init(dataFolder: DataFolder) {
        blobs = BlobStore(folder: dataFolder.blobs)
    }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let text: String
        switch (input.text, input.textBlobID) {
        case (let inline?, nil): text = inline
        case (nil, let blobID?): text = String(decoding: try blobs.get(blobID), as: UTF8.self)
        default: throw ActivityFailure.nonRetryable(.invalidInput, "give exactly one of 'text' or 'text_blob_id'")
        }
        let chunkSize = input.chunkSize ?? 2_000
        let overlap = input.chunkOverlap ?? 200
        guard chunkSize >= 50 else { throw ActivityFailure.nonRetryable(.invalidInput, "chunk_size must be at least 50 characters, got \(chunkSize)") }
        guard overlap >= 0, overlap < chunkSize / 2 else {
            throw ActivityFailure.nonRetryable(.invalidInput, "chunk_overlap must be from 0 to less than half of chunk_size (\(chunkSize / 2)), got \(overlap)")
        }
        let characters = Array(text)
        let sections = Self.sections(of: characters)
        var chunks: [Chunk] = []
        for (sectionIndex, section) in sections.enumerated() {
            let end = section.start + section.characters
            var start = section.start
            while start < end {
                try context.checkCancellation()
                let limit = min(start + chunkSize, end)
                let cut = limit == end ? end : Self.boundary(in: characters, from: start, to: limit)
                let piece = String(characters[start..<cut]).trimmingCharacters(in: .whitespacesAndNewlines)
                if !piece.isEmpty {
                    chunks.append(Chunk(index: chunks.count, start: start, characters: cut - start, section: sectionIndex, text: piece))
                }
                if cut >= end { break }
                start = max(cut - overlap, start + 1)
            }
        }
        return Output(characters: characters.count, sectionCount: sections.count, chunkCount: chunks.count, sections: sections, chunks: chunks)
    }

    /// Sections begin at Markdown headings; text before the first heading is a section of its own.
    static func sections(of characters: [Character]) -> [Section] {
        var starts: [(Int, String)] = []
        var lineStart = 0
        for index in 0...characters.count where index == characters.count || characters[index] == "\n" {
            let line = String(characters[lineStart..<index])
            if line.hasPrefix("#") {
                let title = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
                if !title.isEmpty { starts.append((lineStart, title)) }
            }
            lineStart = index + 1
        }
        if starts.first?.0 != 0 { starts.insert((0, ""), at: 0) }
        return starts.enumerated().map { index, entry in
            let end = index + 1 < starts.count ? starts[index + 1].0 : characters.count
            return Section(title: entry.1, start: entry.0, characters: end - entry.0)
        }.filter { $0.characters > 0 }
    }

    /// The best place to end a chunk before `limit`: a paragraph break, else a sentence
    /// end, else white space, else `limit` itself; never in the first half of the chunk.
    static func boundary(in characters: [Character], from start: Int, to limit: Int) -> Int {
        let floor = start + (limit - start) / 2
        func last(_ matches: (Int) -> Bool) -> Int? {
            stride(from: limit - 1, through: floor, by: -1).first(where: matches).map { $0 + 1 }
        }
        if let cut = last({ $0 > 0 && characters[$0] == "\n" && characters[$0 - 1] == "\n" }) { return cut }
        if let cut = last({ ".!?".contains(characters[$0]) && $0 + 1 < characters.count && characters[$0 + 1].isWhitespace }) { return cut }
        if let cut = last({ characters[$0].isWhitespace }) { return cut }
        return limit
    }
}
