import FlowCore
import FlowContracts
import FlowRuntime

/// The ML actor's activities, ready to register in its worker.
public enum MLActivities {
    /// The activities of one worker process; they share its one training slot.
    public static func registry(dataFolder: DataFolder, options: TrainingJobOptions) -> ActivityRegistry {
        let slot = TrainingSlot()
        var registry = ActivityRegistry(contract: MLContracts.all)
        registry.register(TrainOrganizationalModelActivity(dataFolder: dataFolder, options: options, slot: slot))
        registry.register(EvaluateModelActivity(dataFolder: dataFolder))
        registry.register(GenerateTextActivity(dataFolder: dataFolder))
        registry.register(ListTrainingJobsActivity(dataFolder: dataFolder))
        registry.register(GetTrainingJobActivity(dataFolder: dataFolder))
        registry.register(CancelTrainingJobActivity(dataFolder: dataFolder))
        return registry
    }
}
