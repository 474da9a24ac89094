import FlowTransport
import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// The default actor's activities, ready to register in its worker.
public enum DefaultActivities {
    public static func registry(transport: any MessageTransport, names: TopologyNames, dataFolder: DataFolder, workerID: String) -> ActivityRegistry {
        var registry = ActivityRegistry(contract: DefaultContracts.all)
        registry.register(ProcessDocumentUploadActivity(dataFolder: dataFolder))
        registry.register(ParseDocumentActivity(dataFolder: dataFolder))
        registry.register(HealthCheckActivity(transport: transport, names: names, dataFolder: dataFolder, workerID: workerID))
        registry.register(CleanupStorageActivity(dataFolder: dataFolder))
        registry.register(StoragePutActivity(dataFolder: dataFolder))
        registry.register(StorageGetActivity(dataFolder: dataFolder))
        registry.register(StorageListActivity(dataFolder: dataFolder))
        registry.register(StorageDeleteActivity(dataFolder: dataFolder))
        registry.register(DelegateTrainingActivity(transport: transport, names: names, dataFolder: dataFolder))
        registry.register(EchoActivity())
        return registry
    }
}

extension DefaultActivities {
    /// `flow worker default`.
    public static let profile = ActorProfile(
        queue: .default, summary: "documents, storage, health, cleanup, delegation of training", defaultConcurrency: 8, metricsPort: 9464
    ) { environment in
        ActorActivities(
            registry: registry(
                transport: try environment.requireTransport(), names: environment.names, dataFolder: DataFolder(environment.dataFolder),
                workerID: environment.workerID
            )
        )
    }
}
