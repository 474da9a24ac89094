import FlowContracts
import FlowCore
import FlowML
import FlowObservability
import FlowRuntime
import Foundation
import Tracing

/// `train_organizational_model`: LoRA fine-tuning of a model folder in the data folder on
/// a JSON-lines dataset (a file in the data folder or a blob id), as a durable job in
/// `training/<job id>/` (``TrainingJobFolder``).
///
/// The job, not the delivery, is the unit that survives:
/// - progress goes to the reply queue as heartbeats and into the job record;
/// - a delivery trains for at most `deliveryHoldLimit`, then checkpoints and hands a copy
///   of its message back to the queue, so no delivery outlives `consumer_timeout`;
/// - a worker told to stop (SIGTERM) checkpoints and hands the message back the same way;
/// - a worker that dies leaves its delivery unacknowledged, the broker redelivers it, and
///   the job continues from its newest complete checkpoint, ending with the adapter an
///   uninterrupted run would have;
/// - the job's lock keeps two deliveries of one job from training at once, and a job that
///   completed is answered from its record without training again.
public struct TrainOrganizationalModelActivity: DeclaredActivity {
    public typealias Declaration = TrainOrganizationalModel

    let dataFolder: DataFolder
    let options: TrainingJobOptions
    let slot: TrainingSlot
    let metrics: TrainingMetrics

    init(dataFolder: DataFolder, options: TrainingJobOptions, slot: TrainingSlot, metrics: TrainingMetrics) {
        self.dataFolder = dataFolder
        self.options = options
        self.slot = slot
        self.metrics = metrics
    }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let folder = try TrainingJobFolder(jobID: input.jobID, dataFolder: dataFolder.root)
        if let answer = try Self.finishedAnswer(folder) { return try answer.get() }

        let slotState = slot.take(for: input.jobID)
        guard slotState.taken else {
            throw ActivityDeferral("this worker is training job \(slotState.holder ?? "?"); job \(input.jobID) waits for a free worker", delay: options.busyRetryDelay)
        }
        defer { slot.release() }
        guard let lock = try folder.lock(holder: "\(options.workerID) (message \(context.messageID))") else {
            throw ActivityDeferral("job \(input.jobID) is training in \(folder.lockHolder); this copy waits", delay: options.busyRetryDelay)
        }
        defer { lock.release() }
        // Read again under the lock: another worker may have finished the job meanwhile.
        if let answer = try Self.finishedAnswer(folder) { return try answer.get() }

        var job = try folder.storedRecord() ?? TrainingJob(jobID: input.jobID, state: .queued, request: input)
        if folder.isCancelRequested {
            job.state = .cancelled
            try folder.write(job)
            throw ActivityFailure.cancelled(Self.cancellationMessage(job, folder: folder))
        }
        job.request = input
        job.state = .running
        job.messageID = context.messageID
        job.workerID = options.workerID
        job.deliveries += 1
        job.error = nil
        try folder.write(job)
        /// Records the job as failed for good and returns the failure to throw.
        func failed(_ failure: ActivityFailure) -> ActivityFailure {
            job.state = .failed
            job.error = failure
            try? folder.write(job)
            return failure
        }

        let trainer: LoRATrainer
        do {
            let logger = context.logger
            trainer = try await withSpan("load \(input.baseModel)") { span in
                span.attributes[FlowSpanAttribute.trainingJob] = input.jobID
                span.attributes[FlowSpanAttribute.trainingModel] = input.baseModel
                return try await ComputeThread.run { [dataFolder] in
                let (model, tokenizer) = try MLInputs.model(input.baseModel, in: dataFolder)
                let settings = try MLInputs.settings(lora: input.lora, training: input.training)
                let dataset = try MLInputs.examples(input.dataset, in: dataFolder, tokenizer: tokenizer, maximumLength: settings.maximumLength)
                if dataset.renderedChatsAsChatML {
                    logger.info("the model folder has no chat_template in tokenizer_config.json: chats are rendered as ChatML", metadata: ["job.id": "\(input.jobID)"])
                }
                do {
                    return try LoRATrainer(model: model, examples: dataset.examples, settings: settings, output: folder.url, resume: true)
                } catch let error as ModelError {
                    throw ActivityFailure.nonRetryable(.invalidTrainingRequest, error.message)
                }
                }
            }
        } catch let failure as ActivityFailure {
            throw failed(failure)
        }
        job.maximumSteps = trainer.settings.maximumSteps
        // The checkpoint's own history: steps trained after it by a killed delivery are
        // trained again, and logged again.
        job.lossHistory = trainer.trainerState.losses.map(Double.init)
        if trainer.trainerState.globalStep > 0 {
            context.logger.info("resuming a training job from its newest checkpoint", metadata: ["job.id": "\(input.jobID)", "step": "\(trainer.trainerState.globalStep)"])
        }

        let ending: LoRATrainer.Ending
        metrics.jobStarted()
        defer { metrics.jobStopped() }
        do {
            ending = try await withSpan("train \(input.jobID)") { span in
                span.attributes[FlowSpanAttribute.trainingJob] = input.jobID
                span.attributes[FlowSpanAttribute.trainingModel] = input.baseModel
                span.attributes["flow.training.resumed_from_step"] = trainer.trainerState.globalStep
                let trace = span.context
                trainer.checkpointWritten = { [metrics] write in metrics.checkpointWritten(write, model: input.baseModel, trace: trace) }
                defer { span.attributes[FlowSpanAttribute.trainingSteps] = job.step }
                return try await train(trainer, job: &job, folder: folder, context: context)
            }
        } catch let error as ModelError {
            throw failed(.nonRetryable(.trainingFailed, error.message))
        } catch is CancellationError {
            job.state = .checkpointed
            try? folder.write(job)
            throw CancellationError()
        }

        let losses = trainer.trainerState.losses
        job.lossHistory = losses.map(Double.init)
        job.step = trainer.trainerState.globalStep
        job.bestLoss = losses.min().map(Double.init)
        switch ending {
        case .completed:
            let result = Output(
                jobID: input.jobID, adapterPath: folder.relativePath, steps: job.step, finalLoss: Double(losses.last ?? 0),
                bestLoss: job.bestLoss, tokensPerSecond: job.tokensPerSecond, trainingSeconds: job.trainingSeconds
            )
            job.state = .completed
            job.result = result
            try folder.write(job)
            return result
        case .stopped(let checkpoint):
            job.state = folder.isCancelRequested ? .cancelled : .checkpointed
            try folder.write(job)
            if job.state == .cancelled {
                throw ActivityFailure.cancelled(Self.cancellationMessage(job, folder: folder))
            }
            let reason = context.isWorkerShuttingDown ? "the worker is shutting down" : "the delivery reached its hold limit of \(options.deliveryHoldLimit)"
            throw ActivityDeferral("\(reason); job \(input.jobID) continues from \(folder.relativePath)/\(checkpoint.lastPathComponent) in a fresh delivery")
        }
    }

    /// Runs the trainer on a thread of its own (it is synchronous and owns the cores) until
    /// it completes or has to stop, reporting progress as heartbeats and in the job record.
    private func train(_ trainer: LoRATrainer, job: inout TrainingJob, folder: TrainingJobFolder, context: ActivityContext) async throws -> LoRATrainer.Ending {
        let progressStream = AsyncStream<TrainingProgress>.makeStream()
        let reporter = Task { [job] in
            var job = job
            var lastReport: ContinuousClock.Instant?
            for await progress in progressStream.stream {
                metrics.step(progress, model: job.request.baseModel)
                job.step = progress.step
                job.loss = Double(progress.loss)
                var history = job.lossHistory ?? []
                history.removeLast(max(0, history.count - (progress.step - 1)))
                history.append(Double(progress.loss))
                job.lossHistory = history
                job.bestLoss = min(job.bestLoss ?? .infinity, Double(progress.loss))
                job.learningRate = Double(progress.learningRate)
                job.tokens += progress.tokens
                job.trainingSeconds += progress.seconds
                job.tokensPerSecond = Double(job.tokens) / max(job.trainingSeconds, 1e-9)
                // A heartbeat and the record at a steady rate however fast the steps are (a
                // small model takes milliseconds a step), and always at the delivery's first
                // step, at each checkpoint and at the last step.
                let due = lastReport.map { ContinuousClock.now - $0 >= options.progressInterval } ?? true
                if due || progress.checkpoint != nil || progress.step == progress.maximumSteps {
                    await context.heartbeat(Progress(progress, folder: folder.relativePath))
                    try? folder.write(job)
                    lastReport = ContinuousClock.now
                }
            }
            return job
        }
        let cancelled = CancellationFlag()
        let holdDeadline = ContinuousClock.now + options.deliveryHoldLimit
        let result: Result<LoRATrainer.Ending, any Error> = await withTaskCancellationHandler {
            do {
                return .success(try await ComputeThread.run {
                    try trainer.train(
                        progress: { progressStream.continuation.yield($0) },
                        shouldStop: {
                            cancelled.isSet || context.isWorkerShuttingDown || ContinuousClock.now >= holdDeadline || folder.isCancelRequested
                        }
                    )
                })
            } catch {
                return .failure(error)
            }
        } onCancel: {
            cancelled.set()
        }
        progressStream.continuation.finish()
        job = await reporter.value
        if cancelled.isSet { throw CancellationError() }
        return try result.get()
    }

    /// The answer for a job that is already over: its result, or its cancellation.
    static func finishedAnswer(_ folder: TrainingJobFolder) throws -> Result<Output, ActivityFailure>? {
        guard let job = try folder.storedRecord() else { return nil }
        switch job.state {
        case .completed:
            return job.result.map { .success($0) }
        case .cancelled:
            return .failure(.cancelled(cancellationMessage(job, folder: folder)))
        default:
            return nil
        }
    }

    static func cancellationMessage(_ job: TrainingJob, folder: TrainingJobFolder) -> String {
        let newest = folder.checkpoints().last.map { "; its newest checkpoint is \($0)" } ?? "; it had no checkpoint"
        return "training job \(job.jobID) was cancelled at step \(job.step)\(job.maximumSteps.map { " of \($0)" } ?? "")\(newest)"
    }

    struct Progress: Encodable {
        var step: Int
        var maxSteps: Int
        var loss: Float
        var learningRate: Float
        var tokensPerSecond: Double
        var checkpoint: String?

        init(_ progress: TrainingProgress, folder: String) {
            step = progress.step
            maxSteps = progress.maximumSteps
            loss = progress.loss
            learningRate = progress.learningRate
            tokensPerSecond = progress.tokensPerSecond
            checkpoint = progress.checkpoint.map { "\(folder)/\($0.lastPathComponent)" }
        }
    }
}
