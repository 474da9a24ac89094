import FlowTransport
import FlowCore
import FlowRuntime
import Foundation

/// The default actor's activities, ready to register in its worker.
public enum DefaultActivities {
    /// Every activity the default actor runs, for code that calls them by name (the
    /// command line) without running them. `registry` registers the same ones.
    public static let declarations: [any ActivityDeclaration.Type] = [
        ProcessDocumentUpload.self, ParseDocument.self, HealthCheck.self, CleanupStorage.self,
        StoragePut.self, StorageGet.self, StorageList.self, StorageDelete.self, DelegateTraining.self, Echo.self,
    ]

    public static func registry(transport: any MessageTransport, names: TopologyNames, dataFolder: DataFolder, workerID: String) -> ActivityRegistry {
        var registry = ActivityRegistry()
        registry.register(ProcessDocumentUpload(dataFolder: dataFolder))
        registry.register(ParseDocument(dataFolder: dataFolder))
        registry.register(HealthCheck(transport: transport, names: names, dataFolder: dataFolder, workerID: workerID))
        registry.register(CleanupStorage(dataFolder: dataFolder))
        registry.register(StoragePut(dataFolder: dataFolder))
        registry.register(StorageGet(dataFolder: dataFolder))
        registry.register(StorageList(dataFolder: dataFolder))
        registry.register(StorageDelete(dataFolder: dataFolder))
        registry.register(DelegateTraining(transport: transport, names: names, dataFolder: dataFolder))
        registry.register(Echo())
        return registry
    }
}
