import FlowCore
import Foundation

/// The worker's data folder, and the one way to turn a path from a message into a file:
/// relative, inside the folder, with `..` and symbolic links resolved before the check.
public struct DataFolder: Sendable {
    public let root: URL

    public init(_ root: URL) {
        self.root = root.standardizedFileURL.resolvingSymlinksInPath()
    }

    /// Sub-folders by purpose.
    public var documents: URL { root.appendingPathComponent("documents") }
    public var blobs: URL { root.appendingPathComponent("blobs") }
    public var temporary: URL { root.appendingPathComponent("tmp") }
    public var checkpoints: URL { root.appendingPathComponent("checkpoints") }
    public var datasets: URL { root.appendingPathComponent("datasets") }

    /// Resolves `path` (relative to the data folder) or refuses it when it would leave
    /// the folder: absolute paths, `..` escapes and links pointing outside all fail.
    public func resolve(_ path: String) throws -> URL {
        guard !path.isEmpty else {
            throw ActivityFailure.nonRetryable(.invalidPath, "the path is empty")
        }
        guard !path.hasPrefix("/") else {
            throw ActivityFailure.nonRetryable(.pathOutsideDataFolder, "path '\(path)' is absolute; give a path relative to the data folder")
        }
        let resolved = root.appendingPathComponent(path).standardizedFileURL.resolvingSymlinksInPath()
        let rootPath = root.path.hasSuffix("/") ? root.path : root.path + "/"
        guard resolved.path.hasPrefix(rootPath) else {
            throw ActivityFailure.nonRetryable(.pathOutsideDataFolder, "path '\(path)' leaves the data folder; only files under it can be used")
        }
        return resolved
    }

    /// Free bytes on the data folder's file system.
    public func freeBytes() -> Int64? {
        let attributes = try? FileManager.default.attributesOfFileSystem(forPath: root.path)
        return (attributes?[.systemFreeSize] as? NSNumber)?.int64Value
    }
}
