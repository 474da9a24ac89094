import FlowCore
import Foundation

/// `parse_document`: splits extracted text into sections (Markdown headings, or blank-line
/// separated blocks under a heading-like line) and into chunks of at most `chunk_size`
/// characters for LLM input, breaking at paragraph, then sentence, then word boundaries.
public enum ParseDocument: ActivityDeclaration {
    public static let name = "parse_document"

    public static let queue = WorkQueue.default

    public struct Input: Codable, Sendable {
        public var text: String?
        public var textBlobID: String?
        public var chunkSize: Int?
        public var chunkOverlap: Int?

        public init(text: String? = nil, textBlobID: String? = nil, chunkSize: Int? = nil, chunkOverlap: Int? = nil) {
            self.text = text
            self.textBlobID = textBlobID
            self.chunkSize = chunkSize
            self.chunkOverlap = chunkOverlap
        }
    }

    public struct Section: Codable, Sendable, Equatable {
        public var title: String
        public var start: Int
        public var characters: Int

        public init(title: String, start: Int, characters: Int) {
            self.title = title
            self.start = start
            self.characters = characters
        }
    }

    public struct Chunk: Codable, Sendable, Equatable {
        public var index: Int
        public var start: Int
        public var characters: Int
        public var section: Int
        public var text: String

        public init(index: Int, start: Int, characters: Int, section: Int, text: String) {
            self.index = index
            self.start = start
            self.characters = characters
            self.section = section
            self.text = text
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var characters: Int
        public var sectionCount: Int
        public var chunkCount: Int
        public var sections: [Section]
        public var chunks: [Chunk]


        public init(characters: Int, sectionCount: Int, chunkCount: Int, sections: [Section], chunks: [Chunk]) {
            self.characters = characters
            self.sectionCount = sectionCount
            self.chunkCount = chunkCount
            self.sections = sections
            self.chunks = chunks
        }
    }
}
