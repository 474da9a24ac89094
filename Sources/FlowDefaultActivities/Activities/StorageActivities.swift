import FlowCore
import FlowRuntime
import Foundation

/// `storage_put`: stores content (UTF-8 `text` or `base64`) and returns its blob id.
public struct StoragePut: Activity {
    public static let name = "storage_put"
    public static let queue = WorkQueue.default

    public struct Input: Codable, Sendable {
        public var text: String?
        public var base64: String?
        public init(text: String? = nil, base64: String? = nil) {
            self.text = text
            self.base64 = base64
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var blobID: String
        public var size: Int
        enum CodingKeys: String, CodingKey {
            case blobID = "blob_id"
            case size
        }
    }

    let blobs: BlobStore
    public init(dataFolder: DataFolder) { blobs = BlobStore(folder: dataFolder.blobs) }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let data: Data
        switch (input.text, input.base64) {
        case (let text?, nil): data = Data(text.utf8)
        case (nil, let encoded?):
            guard let decoded = Data(base64Encoded: encoded) else {
                throw ActivityFailure.nonRetryable(.invalidInput, "'base64' is not valid base64")
            }
            data = decoded
        default:
            throw ActivityFailure.nonRetryable(.invalidInput, "give exactly one of 'text' or 'base64'")
        }
        return Output(blobID: try blobs.put(data), size: data.count)
    }
}

/// `storage_get`: returns a blob's content as base64 (and as text when it is UTF-8).
public struct StorageGet: Activity {
    public static let name = "storage_get"
    public static let queue = WorkQueue.default

    public typealias Input = BlobReference

    public struct Output: Codable, Sendable, Equatable {
        public var blobID: String
        public var size: Int
        public var base64: String
        public var text: String?
        enum CodingKeys: String, CodingKey {
            case blobID = "blob_id"
            case size, base64, text
        }
    }

    let blobs: BlobStore
    public init(dataFolder: DataFolder) { blobs = BlobStore(folder: dataFolder.blobs) }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let data = try blobs.get(input.blobID)
        return Output(blobID: input.blobID, size: data.count, base64: data.base64EncodedString(), text: String(validating: [UInt8](data), as: UTF8.self))
    }
}

/// `storage_list`: every blob with its size and time.
public struct StorageList: Activity {
    public static let name = "storage_list"
    public static let queue = WorkQueue.default
    public typealias Input = Empty

    public struct Output: Codable, Sendable, Equatable {
        public var blobs: [BlobStore.Entry]
        public var totalBytes: Int
        enum CodingKeys: String, CodingKey {
            case blobs
            case totalBytes = "total_bytes"
        }
    }

    let blobs: BlobStore
    public init(dataFolder: DataFolder) { blobs = BlobStore(folder: dataFolder.blobs) }

    public func run(_ input: Empty, context: ActivityContext) async throws -> Output {
        let entries = try blobs.list()
        return Output(blobs: entries, totalBytes: entries.reduce(0) { $0 + $1.size })
    }
}

/// `storage_delete`: removes a blob; deleting one that is not there is not an error.
public struct StorageDelete: Activity {
    public static let name = "storage_delete"
    public static let queue = WorkQueue.default

    public typealias Input = BlobReference

    public struct Output: Codable, Sendable, Equatable {
        public var blobID: String
        public var deleted: Bool
        enum CodingKeys: String, CodingKey {
            case blobID = "blob_id"
            case deleted
        }
    }

    let blobs: BlobStore
    public init(dataFolder: DataFolder) { blobs = BlobStore(folder: dataFolder.blobs) }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        Output(blobID: input.blobID, deleted: try blobs.delete(input.blobID))
    }
}

/// The input of the activities that act on one blob: `{"blob_id": "sha256:…"}`.
public struct BlobReference: Codable, Sendable {
    public var blobID: String
    public init(blobID: String) { self.blobID = blobID }
    enum CodingKeys: String, CodingKey { case blobID = "blob_id" }
}
