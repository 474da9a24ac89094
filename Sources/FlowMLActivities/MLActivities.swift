import FlowCore
import FlowContracts
import FlowML
import FlowObservability
import FlowRuntime

/// The ML actor's activities, ready to register in its worker.
public enum MLActivities {
    /// The activities of one worker process; they share its one training slot.
    /// Training records its steps, loss and checkpoints into `metrics`.
    public static func registry(dataFolder: DataFolder, options: TrainingJobOptions, metrics: FlowMetrics = FlowMetrics()) -> ActivityRegistry {
        let slot = TrainingSlot()
        var registry = ActivityRegistry(contract: MLContracts.all)
        registry.register(TrainOrganizationalModelActivity(dataFolder: dataFolder, options: options, slot: slot, metrics: TrainingMetrics(metrics)))
        registry.register(EvaluateModelActivity(dataFolder: dataFolder))
        registry.register(GenerateTextActivity(dataFolder: dataFolder))
        registry.register(ListTrainingJobsActivity(dataFolder: dataFolder))
        registry.register(GetTrainingJobActivity(dataFolder: dataFolder))
        registry.register(CancelTrainingJobActivity(dataFolder: dataFolder))
        return registry
    }
}

extension MLActivities {
    /// `flow worker ml`. One job trains at a time (training owns the cores); the other slots
    /// answer job queries, cancellations, evaluations and generations meanwhile.
    public static let profile = ActorProfile(
        queue: .ml, summary: "training, evaluation", defaultConcurrency: 4, metricsPort: 9465,
        prepare: { EngineEnvironment.relaunchIfNeeded() },
        check: { environment in
            _ = try trainingHold(environment.variables)
            return []
        },
        activities: { environment in
            if let threads = environment.variables["FLOW_ML_THREADS"].flatMap(Int.init) { ComputeThreads.count = threads }
            let options = TrainingJobOptions(workerID: environment.workerID, deliveryHoldLimit: try trainingHold(environment.variables))
            return ActorActivities(registry: registry(dataFolder: DataFolder(environment.dataFolder), options: options, metrics: environment.metrics))
        }
    )

    /// How long one delivery may train before it checkpoints and hands the job on
    /// (`FLOW_TRAINING_HOLD_SECONDS`, 1200 by default).
    static func trainingHold(_ variables: [String: String]) throws -> Duration {
        let text = variables["FLOW_TRAINING_HOLD_SECONDS"] ?? "1200"
        guard let seconds = Int(text), seconds > 0 else {
            throw ActivityFailure.nonRetryable(.invalidConfiguration, "--training-hold-seconds (FLOW_TRAINING_HOLD_SECONDS) must be a positive number of seconds, got '\(text)'")
        }
        return .seconds(seconds)
    }
}
