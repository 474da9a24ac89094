import FlowCore
import Foundation

/// `cleanup_storage`: removes blobs, temporary files and training checkpoints older than
/// a retention period, and reports what it removed (or would remove, with `dry_run`).
///
/// Training checkpoints are the `checkpoint-<step>/` folders of jobs in `training/` that
/// are over (completed, failed or cancelled, by their `job.json`): a job that may still
/// continue keeps every checkpoint, and a job's record and final adapter always stay.
public enum CleanupStorage: ActivityDeclaration {
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


        public init(dryRun: Bool, removed: [RemovedFile], freedBytes: Int) {
            self.dryRun = dryRun
            self.removed = removed
            self.freedBytes = freedBytes
        }
    }
}
