import FlowCore
import FlowDefaultActivities
import FlowRuntime

/// The ML actor's activities, ready to register in its worker.
public enum MLActivities {
    /// The declarations of every activity the registry runs, for the command line.
    public static let declarations: [any ActivityDeclaration.Type] = [
        TrainOrganizationalModel.self, EvaluateModel.self, GenerateText.self, ListTrainingJobs.self, GetTrainingJob.self, CancelTrainingJob.self,
    ]

    /// The activities of one worker process; they share its one training slot.
    public static func registry(dataFolder: DataFolder, options: TrainingJobOptions) -> ActivityRegistry {
        let slot = TrainingSlot()
        var registry = ActivityRegistry()
        registry.register(TrainOrganizationalModelActivity(dataFolder: dataFolder, options: options, slot: slot))
        registry.register(EvaluateModelActivity(dataFolder: dataFolder))
        registry.register(GenerateTextActivity(dataFolder: dataFolder))
        registry.register(ListTrainingJobsActivity(dataFolder: dataFolder))
        registry.register(GetTrainingJobActivity(dataFolder: dataFolder))
        registry.register(CancelTrainingJobActivity(dataFolder: dataFolder))
        return registry
    }
}
