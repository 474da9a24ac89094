import FlowCore
import Foundation

/// `process_document_upload`: extracts text and metadata from a document in the data
/// folder (`documents/…`) or the blob store, and stores the text as a blob for the steps
/// that follow.
public enum ProcessDocumentUpload: ActivityDeclaration {
    public static let name = "process_document_upload"

    public static let queue = WorkQueue.default

    public static var retryPolicy: RetryPolicy {
        RetryPolicy(nonRetryableErrorTypes: ["UnsupportedFormat", "CorruptDocument", "InvalidPath", "PathOutsideDataFolder", "DocumentNotFound"])
    }

    public struct Input: Codable, Sendable {
        /// A path relative to the data folder, such as `documents/inbox/report.pdf`.
        public var path: String?
        /// Or a blob id from `storage_put`.
        public var blobID: String?
        /// A name to use in place of the path's file name (and its extension for the format).
        public var fileName: String?
        public var documentID: String?
        /// Read the document as this format instead of detecting it.
        public var format: DocumentFormat?

        public init(path: String? = nil, blobID: String? = nil, fileName: String? = nil, documentID: String? = nil, format: DocumentFormat? = nil) {
            self.path = path
            self.blobID = blobID
            self.fileName = fileName
            self.documentID = documentID
            self.format = format
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var documentID: String
        public var source: String
        public var format: DocumentFormat
        public var sizeBytes: Int
        public var characters: Int
        public var words: Int
        public var lines: Int
        public var metadata: [String: String]
        /// The whole extracted text, stored as a blob.
        public var textBlobID: String
        /// The text itself, up to ``ProcessDocumentUpload/inlineTextLimit`` characters.
        public var text: String
        public var textTruncated: Bool


        public init(documentID: String, source: String, format: DocumentFormat, sizeBytes: Int, characters: Int, words: Int, lines: Int, metadata: [String: String], textBlobID: String, text: String, textTruncated: Bool) {
            self.documentID = documentID
            self.source = source
            self.format = format
            self.sizeBytes = sizeBytes
            self.characters = characters
            self.words = words
            self.lines = lines
            self.metadata = metadata
            self.textBlobID = textBlobID
            self.text = text
            self.textTruncated = textTruncated
        }
    }

    /// How much text travels in the reply itself; the rest is in the text blob.
    public static let inlineTextLimit = 64 * 1024
}
