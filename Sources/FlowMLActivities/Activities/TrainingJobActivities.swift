import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// `list_training_jobs`: the jobs in `training/`, newest change first.
public struct ListTrainingJobsActivity: DeclaredActivity {
    public typealias Declaration = ListTrainingJobs

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let limit = input.limit ?? 100
        guard limit > 0 else { throw ActivityFailure.nonRetryable(.invalidInput, "limit must be positive, got \(limit)") }
        let training = dataFolder.root.appendingPathComponent("training")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: training.path)) ?? []
        var jobs: [TrainingJob] = []
        for name in names where !name.hasPrefix(".") {
            guard let folder = try? TrainingJobFolder(jobID: name, dataFolder: dataFolder.root) else { continue }
            do {
                guard let job = try folder.view() else { continue }
                if let state = input.state, job.state != state { continue }
                var listed = job
                listed.lossHistory = nil
                jobs.append(listed)
            } catch {
                // One unreadable record must not hide the others; get_training_job names it.
                context.logger.warning("skipping a job record that does not decode", metadata: ["job.folder": "\(name)", "error": "\(error)"])
            }
        }
        jobs.sort { ($0.updatedAt, $0.jobID) > ($1.updatedAt, $1.jobID) }
        return Output(jobs: Array(jobs.prefix(limit)))
    }
}

/// `get_training_job`: one job's record, progress and checkpoints.
public struct GetTrainingJobActivity: DeclaredActivity {
    public typealias Declaration = GetTrainingJob

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        try TrainingJobFolder(jobID: input.jobID, dataFolder: dataFolder.root).existingView()
    }
}

/// `cancel_training_job`: asks a job to stop (see ``CancelTrainingJob``).
public struct CancelTrainingJobActivity: DeclaredActivity {
    public typealias Declaration = CancelTrainingJob

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let folder = try TrainingJobFolder(jobID: input.jobID, dataFolder: dataFolder.root)
        let job = try folder.existingView()
        if job.state.isFinal { return job }
        // The marker is what the trainer and later deliveries look at; the record follows
        // at once only when no process trains the job (the trainer writes it otherwise).
        try folder.requestCancel()
        if let lock = try folder.lock(holder: "cancel_training_job (message \(context.messageID))") {
            defer { lock.release() }
            if var stored = try folder.storedRecord(), !stored.state.isFinal {
                stored.state = .cancelled
                try folder.write(stored)
            }
        }
        context.logger.info("training job cancellation requested", metadata: ["job.id": "\(input.jobID)"])
        return try folder.view() ?? job
    }
}

extension TrainingJobFolder {
    /// The job's ``view()``, or a non-retryable failure naming it when it has no record.
    func existingView() throws -> TrainingJob {
        guard let job = try view() else {
            throw ActivityFailure.nonRetryable(.jobNotFound, "no training job '\(jobID)' in the data folder's training/ (list_training_jobs shows the jobs there)")
        }
        return job
    }
}
