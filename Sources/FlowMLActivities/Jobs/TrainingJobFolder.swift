import FlowContracts
import FlowCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One training job's folder, `training/<job>/` in the data folder: its checkpoints, its
/// final adapter, and the files that make the job durable and shared between workers on
/// the same volume:
/// - `job.json`, the job's record, always replaced whole (written aside, then renamed);
/// - `job.lock`, held with `flock` by the one process training the job, so two deliveries
///   of it never train at once (the kernel drops the lock when its process dies);
/// - `cancel-requested`, created by `cancel_training_job`, seen by the trainer each step.
struct TrainingJobFolder: Sendable {
    let jobID: String
    let url: URL
    let relativePath: String

    private var recordFile: URL { url.appendingPathComponent("job.json") }
    private var lockFile: URL { url.appendingPathComponent("job.lock") }
    private var cancelMarker: URL { url.appendingPathComponent("cancel-requested") }

    /// The folder of `jobID` under `training/`, refusing ids that are not a plain name.
    init(jobID: String, dataFolder: URL) throws {
        guard !jobID.isEmpty, jobID.count <= 200, jobID.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }), !jobID.hasPrefix(".") else {
            throw ActivityFailure.nonRetryable(.invalidInput, "job_id must be 1 to 200 letters, digits, '-', '_', '.' or ':' and not start with '.', got '\(jobID)'")
        }
        self.jobID = jobID
        relativePath = "training/\(jobID.replacingOccurrences(of: ":", with: "_"))"
        url = dataFolder.appendingPathComponent(relativePath)
    }

    /// The job's record as it was written, or nil for a job never seen.
    func storedRecord() throws -> TrainingJob? {
        guard let data = try? Data(contentsOf: recordFile) else { return nil }
        do {
            return try FlowJSON.decode(TrainingJob.self, from: data)
        } catch {
            throw ActivityFailure.nonRetryable(.corruptJobRecord, "\(relativePath)/job.json does not decode (\(error)); move it aside to start the job afresh")
        }
    }

    /// The record as users see it: with the checkpoints on disk, the cancel request, and a
    /// `running` job whose process died reported as waiting to be continued.
    func view() throws -> TrainingJob? {
        guard var job = try storedRecord() else { return nil }
        job.checkpoints = checkpoints()
        job.cancelRequested = isCancelRequested
        if job.state == .running, !isLocked() {
            job.state = job.checkpoints.isEmpty ? .queued : .checkpointed
        }
        return job
    }

    /// Writes the record: to a temporary file first, flushed, then renamed over the old
    /// one, so a reader or a crash never sees half a record.
    func write(_ job: TrainingJob) throws {
        var job = job
        job.updatedAt = Date()
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let temporary = url.appendingPathComponent(".job.json.\(ProcessInfo.processInfo.processIdentifier).\(UUID().uuidString.prefix(8))")
        try FlowJSON.prettyEncoder.encode(job).write(to: temporary)
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.synchronize()
        try handle.close()
        guard rename(temporary.path, recordFile.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw ActivityFailure.retryable(.jobRecordUnwritable, "could not replace \(relativePath)/job.json: \(reason)")
        }
    }

    /// Complete checkpoints on disk, oldest first, relative to the data folder.
    func checkpoints() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("checkpoint-"), let step = Int(name.dropFirst("checkpoint-".count)) else { return nil }
            return (step, "\(relativePath)/\(name)")
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    var isCancelRequested: Bool { FileManager.default.fileExists(atPath: cancelMarker.path) }

    func requestCancel() throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: cancelMarker.path, contents: Data("\(Date())\n".utf8)) else {
            throw ActivityFailure.retryable(.jobRecordUnwritable, "could not create \(relativePath)/cancel-requested")
        }
    }

    /// Takes the job's lock, or returns nil when another delivery (in this process or
    /// another on the same volume) holds it.
    func lock(holder: String) throws -> TrainingJobLock? {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let descriptor = open(lockFile.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ActivityFailure.retryable(.jobLockUnavailable, "could not open \(relativePath)/job.lock: \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        _ = ftruncate(descriptor, 0)
        let line = Array("\(holder)\n".utf8)
        _ = line.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return TrainingJobLock(descriptor: descriptor)
    }

    /// Who holds the lock, as its holder wrote it.
    var lockHolder: String {
        ((try? String(contentsOf: lockFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether some process trains the job now.
    func isLocked() -> Bool {
        let descriptor = open(lockFile.path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { return true }
        flock(descriptor, LOCK_UN)
        return false
    }

}

/// A held job lock; released by ``release()``, when dropped, or when its process ends.
final class TrainingJobLock: Sendable {
    private let descriptor: Int32
    private let released = Atomic<Bool>(false)

    init(descriptor: Int32) { self.descriptor = descriptor }

    func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        close(descriptor)
    }

    deinit { release() }
}
