import FlowCore
import Foundation

/// `storage_put`: stores content (UTF-8 `text` or `base64`) and returns its blob id.
public enum StoragePut: ActivityDeclaration {
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

        public init(blobID: String, size: Int) {
            self.blobID = blobID
            self.size = size
        }
    }
}

/// `storage_get`: returns a blob's content as base64 (and as text when it is UTF-8).
public enum StorageGet: ActivityDeclaration {
    public static let name = "storage_get"

    public static let queue = WorkQueue.default

    public typealias Input = BlobReference

    public struct Output: Codable, Sendable, Equatable {
        public var blobID: String
        public var size: Int
        public var base64: String
        public var text: String?

        public init(blobID: String, size: Int, base64: String, text: String? = nil) {
            self.blobID = blobID
            self.size = size
            self.base64 = base64
            self.text = text
        }
    }
}

/// `storage_list`: every blob with its size and time.
public enum StorageList: ActivityDeclaration {
    public static let name = "storage_list"

    public static let queue = WorkQueue.default

    public typealias Input = Empty

    public struct Output: Codable, Sendable, Equatable {
        public var blobs: [BlobEntry]
        public var totalBytes: Int

        public init(blobs: [BlobEntry], totalBytes: Int) {
            self.blobs = blobs
            self.totalBytes = totalBytes
        }
    }
}

/// `storage_delete`: removes a blob; deleting one that is not there is not an error.
public enum StorageDelete: ActivityDeclaration {
    public static let name = "storage_delete"

    public static let queue = WorkQueue.default

    public typealias Input = BlobReference

    public struct Output: Codable, Sendable, Equatable {
        public var blobID: String
        public var deleted: Bool

        public init(blobID: String, deleted: Bool) {
            self.blobID = blobID
            self.deleted = deleted
        }
    }
}

/// The input of the activities that act on one blob: `{"blob_id": "sha256:…"}`.
public struct BlobReference: Codable, Sendable {
    public var blobID: String
    public init(blobID: String) { self.blobID = blobID }
}

/// A blob's id, size and creation time, as `storage_list` reports it.
public struct BlobEntry: Codable, Sendable, Equatable {
    public var blobID: String
    public var size: Int
    public var createdAt: Date

    public init(blobID: String, size: Int, createdAt: Date) {
        self.blobID = blobID
        self.size = size
        self.createdAt = createdAt
    }
}
