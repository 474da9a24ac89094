import Crypto
import FlowCore
import Foundation

/// A content-addressed store of blobs under the data folder, so large payloads travel
/// between activities as ids (`sha256:…`) instead of message bodies.
///
/// A blob is written to a temporary file and renamed into place, so a reader never sees
/// half a blob and two writers of the same content agree.
public struct BlobStore: Sendable {
    public let folder: URL

    public init(folder: URL) {
        self.folder = folder
    }

    /// A blob's id and size.
    public struct Entry: Codable, Sendable, Equatable {
        public var blobID: String
        public var size: Int
        public var createdAt: Date
    }

    /// Stores `data` and returns its id; storing the same content again returns the same id.
    public func put(_ data: Data) throws -> String {
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        let blobID = "sha256:\(digest)"
        let destination = try path(of: blobID)
        if FileManager.default.fileExists(atPath: destination.path) { return blobID }
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = destination.deletingLastPathComponent().appendingPathComponent(".\(digest).\(UUID().uuidString).partial")
        try data.write(to: temporary)
        if rename(temporary.path, destination.path) != 0 {
            try? FileManager.default.removeItem(at: temporary)
            throw ActivityFailure.retryable(.storageWriteFailed, "could not move blob \(blobID) into place (errno \(errno))")
        }
        return blobID
    }

    public func get(_ blobID: String) throws -> Data {
        let source = try path(of: blobID)
        guard let data = FileManager.default.contents(atPath: source.path) else {
            throw ActivityFailure.nonRetryable(.blobNotFound, "blob \(blobID) does not exist in the store")
        }
        return data
    }

    @discardableResult
    public func delete(_ blobID: String) throws -> Bool {
        let target = try path(of: blobID)
        guard FileManager.default.fileExists(atPath: target.path) else { return false }
        try FileManager.default.removeItem(at: target)
        return true
    }

    public func list() throws -> [Entry] {
        guard let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.fileSizeKey, .creationDateKey, .contentModificationDateKey]) else {
            return []
        }
        var entries: [Entry] = []
        for case let file as URL in enumerator {
            let name = file.lastPathComponent
            guard name.count == 64, name.allSatisfy(\.isHexDigit) else { continue }
            let values = try file.resourceValues(forKeys: [.fileSizeKey, .contentModificationDateKey])
            entries.append(Entry(blobID: "sha256:\(name)", size: values.fileSize ?? 0, createdAt: values.contentModificationDate ?? Date(timeIntervalSince1970: 0)))
        }
        return entries.sorted { $0.blobID < $1.blobID }
    }

    /// The file of a blob id; refuses anything that is not `sha256:` and 64 hex digits,
    /// which is also what keeps ids from naming files outside the store.
    public func path(of blobID: String) throws -> URL {
        let digest = blobID.hasPrefix("sha256:") ? String(blobID.dropFirst(7)) : ""
        guard digest.count == 64, digest.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw ActivityFailure.nonRetryable(.invalidBlobID, "'\(blobID)' is not a blob id: ids look like sha256:<64 lowercase hex digits>")
        }
        return folder.appendingPathComponent(String(digest.prefix(2))).appendingPathComponent(digest)
    }
}
