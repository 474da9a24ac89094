import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// Runs ``ProcessDocumentUpload`` (`FlowContracts`).
public struct ProcessDocumentUploadActivity: DeclaredActivity {
    public typealias Declaration = ProcessDocumentUpload
    public typealias Input = ProcessDocumentUpload.Input
    public typealias Output = ProcessDocumentUpload.Output

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
        let format: DocumentFormat
        let document: ExtractedDocument
        do {
            format = try input.format ?? DocumentFormat.detect(data: data, fileName: fileName)
            document = try TextExtractor().extract(data, format: format, fileName: fileName ?? source)
        } catch let error as DocumentError {
            throw ActivityFailure(error)
        }
        let textBlobID = try blobs.put(Data(document.text.utf8))
        let inline = String(document.text.prefix(Declaration.inlineTextLimit))
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
