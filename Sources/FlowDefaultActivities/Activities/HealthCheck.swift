import FlowTransport
import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// Runs ``HealthCheck`` (`FlowContracts`).
public struct HealthCheckActivity: DeclaredActivity {
    public typealias Declaration = HealthCheck
    public typealias Input = HealthCheck.Input
    public typealias Output = HealthCheck.Output
    typealias QueueHealth = HealthCheck.QueueHealth

    let transport: any MessageTransport

    let names: TopologyNames

    let dataFolder: DataFolder

    let workerID: String

    public init(transport: any MessageTransport, names: TopologyNames, dataFolder: DataFolder, workerID: String) {
        self.transport = transport
        self.names = names
        self.dataFolder = dataFolder
        self.workerID = workerID
    }

    public func run(_ input: Empty, context: ActivityContext) async throws -> Output {
        var problems: [String] = []
        var queues: [QueueHealth] = []
        // Work queues need a consumer; the dead-letter and reply queues are read on demand.
        let checked: [(name: String, worker: WorkQueue?)] =
            names.workQueues.map { (names.queue($0), $0) } + [(names.deadLetterQueue, nil), (names.coordinatorReplyQueue, nil)]
        for (name, worker) in checked {
            do {
                let status = try await transport.inspectQueue(name)
                queues.append(QueueHealth(name: name, ready: status.messageCount, consumers: status.consumerCount))
                if let worker, status.consumerCount == 0 {
                    problems.append("queue \(name) has no consumer: start `flow worker \(worker.workerName)`")
                }
            } catch let error as AMQPError {
                queues.append(QueueHealth(name: name, problem: error.message))
                problems.append(error.message)
            }
        }
        if let dead = queues.first(where: { $0.name == names.deadLetterQueue }), let ready = dead.ready, ready > 0 {
            problems.append("\(ready) messages wait in \(names.deadLetterQueue): inspect them with `flow dlq list`")
        }
        let free = dataFolder.freeBytes()
        if let free, free < Declaration.minimumFreeBytes {
            problems.append("the data folder has \(free / 1_048_576) MiB free, less than \(Declaration.minimumFreeBytes / 1_048_576) MiB")
        }
        let probe = dataFolder.temporary.appendingPathComponent("health-\(UUID().uuidString)")
        var writable = false
        do {
            try FileManager.default.createDirectory(at: dataFolder.temporary, withIntermediateDirectories: true)
            try Data("ok".utf8).write(to: probe)
            try FileManager.default.removeItem(at: probe)
            writable = true
        } catch {
            problems.append("the data folder \(dataFolder.root.path) is not writable: \(error.localizedDescription)")
        }
        return Output(
            status: problems.isEmpty ? "healthy" : "degraded",
            problems: problems,
            broker: transport.brokerDescription,
            queues: queues,
            dataFolder: dataFolder.root.path,
            freeBytes: free,
            writable: writable,
            workerID: workerID
        )
    }
}
