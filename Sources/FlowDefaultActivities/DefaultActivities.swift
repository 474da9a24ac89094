import FlowAMQP
import FlowCore
import FlowRuntime
import Foundation

/// The default actor's activities, ready to register in its worker.
public enum DefaultActivities {
    public static func registry(connection: AMQPConnection, names: TopologyNames, dataFolder: DataFolder, workerID: String) -> ActivityRegistry {
        var registry = ActivityRegistry()
        registry.register(ProcessDocumentUpload(dataFolder: dataFolder))
        registry.register(ParseDocument(dataFolder: dataFolder))
        registry.register(HealthCheck(connection: connection, names: names, dataFolder: dataFolder, workerID: workerID))
        registry.register(CleanupStorage(dataFolder: dataFolder))
        registry.register(StoragePut(dataFolder: dataFolder))
        registry.register(StorageGet(dataFolder: dataFolder))
        registry.register(StorageList(dataFolder: dataFolder))
        registry.register(StorageDelete(dataFolder: dataFolder))
        registry.register(DelegateTraining(connection: connection, names: names, dataFolder: dataFolder))
        return registry
    }
}
