import FlowCore
import FlowRuntime
import Foundation

/// `cleanup_storage`: removes blobs, temporary files and training checkpoints older than
/// a retention period, and reports what it removed (or would remove, with `dry_run`).
public struct CleanupStorage: Activity {
    public static let name = "cleanup_storage"
    public static let queue = WorkQueue.default

    public enum Area: String, Codable, Sendable, CaseIterable {
        case blobs, temporary, checkpoints
    }

    public struct Input: Codable, Sendable {
        /// Files not modified for this many days are removed. Defaults to 30.
        public var retentionDays: Double?
        public var dryRun: Bool?
        public var areas: [Area]?

        public init(retentionDays: Double? = nil, dryRun: Bool? = nil, areas: [Area]? = nil) {
            self.retentionDays = retentionDays
            self.dryRun = dryRun
            self.areas = areas
        }

        enum CodingKeys: String, CodingKey {
            case retentionDays = "retention_days"
            case dryRun = "dry_run"
            case areas
        }
    }

    public struct RemovedFile: Codable, Sendable, Equatable {
        public var path: String
        public var bytes: Int

        public init(path: String, bytes: Int) {
            self.path = path
            self.bytes = bytes
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var dryRun: Bool
        public var removed: [RemovedFile]
        public var freedBytes: Int

        enum CodingKeys: String, CodingKey {
            case dryRun = "dry_run"
            case removed
            case freedBytes = "freed_bytes"
        }
    }

    let dataFolder: DataFolder
    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let retentionDays = input.retentionDays ?? 30
        guard retentionDays >= 0 else { throw ActivityFailure.nonRetryable("InvalidInput", "retention_days must not be negative") }
        let dryRun = input.dryRun ?? false
        let cutoff = Date().addingTimeInterval(-retentionDays * 86_400)
        var removed: [RemovedFile] = []
        for area in input.areas ?? Area.allCases {
            let folder: URL
            switch area {
            case .blobs: folder = dataFolder.blobs
            case .temporary: folder = dataFolder.temporary
            case .checkpoints: folder = dataFolder.checkpoints
            }
            guard let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.contentModificationDateKey, .fileSizeKey, .isRegularFileKey]) else { continue }
            for case let file as URL in enumerator {
                try context.checkCancellation()
                let values = try file.resourceValues(forKeys: [.contentModificationDateKey, .fileSizeKey, .isRegularFileKey])
                guard values.isRegularFile == true, let modified = values.contentModificationDate, modified < cutoff else { continue }
                let relative = String(file.standardizedFileURL.path.dropFirst(dataFolder.root.path.count + 1))
                if !dryRun { try FileManager.default.removeItem(at: file) }
                removed.append(RemovedFile(path: relative, bytes: values.fileSize ?? 0))
            }
        }
        context.logger.info("storage cleaned", metadata: ["files": "\(removed.count)", "dry_run": "\(dryRun)"])
        return Output(dryRun: dryRun, removed: removed.sorted { $0.path < $1.path }, freedBytes: removed.reduce(0) { $0 + $1.bytes })
    }
}
