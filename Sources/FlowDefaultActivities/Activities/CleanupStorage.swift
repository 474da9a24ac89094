import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// Runs ``CleanupStorage`` (`FlowContracts`).
public struct CleanupStorageActivity: DeclaredActivity {
    public typealias Declaration = CleanupStorage
    public typealias Input = CleanupStorage.Input
    public typealias Output = CleanupStorage.Output
    typealias Area = CleanupStorage.Area
    typealias RemovedFile = CleanupStorage.RemovedFile

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let retentionDays = input.retentionDays ?? 30
        guard retentionDays >= 0 else { throw ActivityFailure.nonRetryable(.invalidInput, "retention_days must not be negative") }
        let dryRun = input.dryRun ?? false
        let cutoff = Date().addingTimeInterval(-retentionDays * 86_400)
        var removed: [RemovedFile] = []
        for area in input.areas ?? Area.allCases {
            let folders: [URL]
            switch area {
            case .blobs: folders = [dataFolder.blobs]
            case .temporary: folders = [dataFolder.temporary]
            case .checkpoints: folders = [dataFolder.checkpoints] + finishedJobCheckpoints()
            }
            for folder in folders {
                guard let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.contentModificationDateKey, .fileSizeKey, .isRegularFileKey]) else { continue }
                for case let file as URL in enumerator {
                    try context.checkCancellation()
                    let values = try file.resourceValues(forKeys: [.contentModificationDateKey, .fileSizeKey, .isRegularFileKey])
                    guard values.isRegularFile == true, let modified = values.contentModificationDate, modified < cutoff else { continue }
                    let relative = String(file.standardizedFileURL.path.dropFirst(dataFolder.root.path.count + 1))
                    if !dryRun { try FileManager.default.removeItem(at: file) }
                    removed.append(RemovedFile(path: relative, bytes: values.fileSize ?? 0))
                }
                // An emptied checkpoint folder would still list as a checkpoint.
                if !dryRun, area == .checkpoints, folder.lastPathComponent.hasPrefix("checkpoint-"),
                   (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.isEmpty == true {
                    try FileManager.default.removeItem(at: folder)
                }
            }
        }
        context.logger.info("storage cleaned", metadata: ["files": "\(removed.count)", "dry_run": "\(dryRun)"])
        return Output(dryRun: dryRun, removed: removed.sorted { $0.path < $1.path }, freedBytes: removed.reduce(0) { $0 + $1.bytes })
    }

    /// The checkpoint folders of the training jobs that are over.
    private func finishedJobCheckpoints() -> [URL] {
        let training = dataFolder.root.appendingPathComponent("training")
        var folders: [URL] = []
        for job in (try? FileManager.default.contentsOfDirectory(at: training, includingPropertiesForKeys: nil)) ?? [] {
            guard let data = try? Data(contentsOf: job.appendingPathComponent("job.json")),
                  let record = try? FlowJSON.decode(TrainingJob.self, from: data), record.state.isFinal
            else { continue }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: job.path)) ?? []
            folders += names.filter { $0.hasPrefix("checkpoint-") }.sorted().map { job.appendingPathComponent($0) }
        }
        return folders
    }
}
