import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// Runs ``StoragePut`` (`FlowContracts`).
public struct StoragePutActivity: DeclaredActivity {
    public typealias Declaration = StoragePut
    public typealias Input = StoragePut.Input
    public typealias Output = StoragePut.Output

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

/// Runs ``StorageGet`` (`FlowContracts`).
public struct StorageGetActivity: DeclaredActivity {
    public typealias Declaration = StorageGet
    public typealias Input = StorageGet.Input
    public typealias Output = StorageGet.Output

    let blobs: BlobStore

    public init(dataFolder: DataFolder) { blobs = BlobStore(folder: dataFolder.blobs) }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let data = try blobs.get(input.blobID)
        return Output(blobID: input.blobID, size: data.count, base64: data.base64EncodedString(), text: String(validating: [UInt8](data), as: UTF8.self))
    }
}

/// Runs ``StorageList`` (`FlowContracts`).
public struct StorageListActivity: DeclaredActivity {
    public typealias Declaration = StorageList
    public typealias Input = StorageList.Input
    public typealias Output = StorageList.Output

    let blobs: BlobStore

    public init(dataFolder: DataFolder) { blobs = BlobStore(folder: dataFolder.blobs) }

    public func run(_ input: Empty, context: ActivityContext) async throws -> Output {
        let entries = try blobs.list().map { BlobEntry(blobID: $0.blobID, size: $0.size, createdAt: $0.createdAt) }
        return Output(blobs: entries, totalBytes: entries.reduce(0) { $0 + $1.size })
    }
}

/// Runs ``StorageDelete`` (`FlowContracts`).
public struct StorageDeleteActivity: DeclaredActivity {
    public typealias Declaration = StorageDelete
    public typealias Input = StorageDelete.Input
    public typealias Output = StorageDelete.Output

    let blobs: BlobStore

    public init(dataFolder: DataFolder) { blobs = BlobStore(folder: dataFolder.blobs) }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        Output(blobID: input.blobID, deleted: try blobs.delete(input.blobID))
    }
}


