import FlowCore
import FlowRuntime
import Foundation

/// `process_document_upload`: extracts text and metadata from a document in the data
/// folder (`documents/…`) or the blob store, and stores the text as a blob for the steps
/// that follow.
public struct ProcessDocumentUpload: Activity {
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

        enum CodingKeys: String, CodingKey {
            case path
            case blobID = "blob_id"
            case fileName = "file_name"
            case documentID = "document_id"
            case format
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

        enum CodingKeys: String, CodingKey {
            case documentID = "document_id"
            case source, format
            case sizeBytes = "size_bytes"
            case characters, words, lines, metadata
            case textBlobID = "text_blob_id"
            case text
            case textTruncated = "text_truncated"
        }
    }

    /// How much text travels in the reply itself; the rest is in the text blob.
    public static let inlineTextLimit = 64 * 1024

    let dataFolder: DataFolder
    let blobs: BlobStore

    public init(dataFolder: DataFolder) {
        self.dataFolder = dataFolder
        self.blobs = BlobStore(folder: dataFolder.blobs)
    }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let data: Data
        let source: String
        var fileName = input.fileName
        switch (input.path, input.blobID) {
        case (let path?, nil):
            let file = try dataFolder.resolve(path)
            guard let contents = FileManager.default.contents(atPath: file.path) else {
                throw ActivityFailure.nonRetryable(.documentNotFound, "no readable file at '\(path)' in the data folder")
            }
            data = contents
            source = path
            fileName = fileName ?? file.lastPathComponent
        case (nil, let blobID?):
            data = try blobs.get(blobID)
            source = blobID
        default:
            throw ActivityFailure.nonRetryable(.invalidInput, "give exactly one of 'path' (relative to the data folder) or 'blob_id'")
        }
        let format = try input.format ?? DocumentFormat.detect(data: data, fileName: fileName)
        let document = try TextExtractor().extract(data, format: format, fileName: fileName ?? source)
        let textBlobID = try blobs.put(Data(document.text.utf8))
        let inline = String(document.text.prefix(Self.inlineTextLimit))
        context.logger.info("document extracted", metadata: ["document.format": "\(format.rawValue)", "document.characters": "\(document.text.count)"])
        return Output(
            documentID: input.documentID ?? textBlobID,
            source: source,
            format: format,
            sizeBytes: data.count,
            characters: document.text.count,
            words: document.text.split(whereSeparator: \.isWhitespace).count,
            lines: document.text.isEmpty ? 0 : document.text.split(separator: "\n", omittingEmptySubsequences: false).count,
            metadata: document.metadata,
            textBlobID: textBlobID,
            text: inline,
            textTruncated: inline.count < document.text.count
        )
    }
}
