import FlowAMQP
import FlowCoordinator
import FlowCore
import FlowRuntime
import FlowTesting
import Foundation
import GRDB
import Synchronization

/// A coordinator and a default-queue worker in the test process, on a private copy of the
/// topology, with a requester connection for commands and inspection. The coordinator can
/// be stopped and started again on the same store, as a restart would.
final class CoordinatorHarness: Sendable {
    let names: TopologyNames
    let requester: any MessageTransport
    let dataFolder: URL
    let workflows: WorkflowRegistry
    let coordinatorConnection: Mutex<any MessageTransport>
    let workerConnection: any MessageTransport
    let transports: TestTransports
    /// The coordinator's store: SQLite in the data folder, or one in memory.
    let store: any WorkflowStore
    let clock: any WallClock
    private let coordinatorState = Mutex<(coordinator: WorkflowCoordinator?, task: Task<Void, any Error>?)>((nil, nil))
    private let workerTask = Mutex<Task<Void, any Error>?>(nil)
    private let workerConfiguration: WorkerConfiguration

    init(
        workflows: WorkflowRegistry, activities: ActivityRegistry, queue: WorkQueue = .default, replyGrace: Duration = .seconds(5),
        transports: TestTransports = .broker, clock: any WallClock = SystemWallClock(), startsCoordinator: Bool = true,
        storeFixture: String? = nil, inMemoryStore: Bool = false
    ) async throws {
        names = TopologyNames(prefix: TestBroker.uniqueName("coordinator"), deliveryLimit: 3)
        self.transports = transports
        self.clock = clock
        requester = try await transports.connect("test coordinator requester")
        coordinatorConnection = Mutex(try await transports.connect("test coordinator"))
        workerConnection = try await transports.connect("test coordinator worker")
        dataFolder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-coordinator-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dataFolder, withIntermediateDirectories: true)
        try await requester.declare(names.topology)
        self.workflows = workflows
        workerConfiguration = WorkerConfiguration(
            queue: queue, names: names, concurrency: 8, dataFolder: dataFolder.appendingPathComponent("worker"),
            shutdownGracePeriod: .seconds(2), workerID: "test-worker"
        )
        let storePath = Self.configuration(names: names, dataFolder: dataFolder, replyGrace: replyGrace).storePath
        if let storeFixture {
            // A store an earlier release wrote (`sqlite3 .dump`), which this one upgrades.
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: storePath).deletingLastPathComponent(), withIntermediateDirectories: true)
            let dump = try String(contentsOf: Repository.file("Tests/FlowCoordinatorTests/Fixtures/\(storeFixture)"), encoding: .utf8)
            let database = try DatabaseQueue(path: storePath)
            try await database.writeWithoutTransaction { try $0.execute(sql: dump) }
            try database.close()
        }
        store = inMemoryStore ? InMemoryWorkflowStore() : try SQLiteWorkflowStore(path: storePath)
        self.replyGrace = replyGrace
        try startWorker(activities)
        if startsCoordinator { startCoordinator() }
    }

    private let replyGrace: Duration

    private static func configuration(names: TopologyNames, dataFolder: URL, replyGrace: Duration) -> CoordinatorConfiguration {
        CoordinatorConfiguration(
            names: names, dataFolder: dataFolder.appendingPathComponent("coordinator"), coordinatorID: "test-coordinator",
            supervisionInterval: .milliseconds(100), replyGrace: replyGrace
        )
    }

    var coordinator: WorkflowCoordinator { coordinatorState.withLock { $0.coordinator! } }

    private func startWorker(_ activities: ActivityRegistry) throws {
        let worker = Worker(
            configuration: workerConfiguration, registry: activities, transport: workerConnection,
            store: try ActivityResultStore(path: workerConfiguration.storePath), logger: TestBroker.logger
        )
        workerTask.withLock { $0 = Task { try await worker.run() } }
    }

    /// Stops the worker and starts one with other activities, as a redeploy or a restart
    /// with new settings would.
    func replaceWorker(with activities: ActivityRegistry) async throws {
        let task = workerTask.withLock { $0 }
        task?.cancel()
        _ = try? await task?.value
        try startWorker(activities)
    }

    /// Starts a coordinator on the store (or `store`, a wrapper around it) and `transport`
    /// (by default the harness's coordinator connection), running `workflows` (by default
    /// the harness's: another registry is a deploy of changed workflow code).
    func startCoordinator(store: (any WorkflowStore)? = nil, transport: (any MessageTransport)? = nil, workflows: WorkflowRegistry? = nil) {
        if let transport { coordinatorConnection.withLock { $0 = transport } }
        let coordinator = WorkflowCoordinator(
            configuration: Self.configuration(names: names, dataFolder: dataFolder, replyGrace: replyGrace), registry: workflows ?? self.workflows,
            transport: coordinatorConnection.withLock { $0 }, store: store ?? self.store, clock: clock, logger: TestBroker.logger
        )
        let task = Task { try await coordinator.run() }
        coordinatorState.withLock { $0 = (coordinator, task) }
    }

    /// Stops the coordinator as a shutdown would; its workflows stay where they stand.
    func stopCoordinator() async {
        let task = coordinatorState.withLock { $0.task }
        task?.cancel()
        _ = try? await task?.value
    }

    /// Waits until workflow `id` has one of `statuses`, and returns it.
    func waitFor(_ id: String, _ statuses: Set<WorkflowStatus>, timeout: Duration = .seconds(60)) async throws -> WorkflowRecord {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let record = try await store.workflow(id: id), statuses.contains(record.status) { return record }
            try await Task.sleep(for: .milliseconds(20))
        }
        let record = try await store.workflow(id: id)
        throw HarnessError("workflow \(id) is \(record?.status.rawValue ?? "unknown"), not \(statuses.map(\.rawValue)) after \(timeout); history:\n"
            + ((try? await store.history(workflowID: id)) ?? []).map { "\($0.kind.rawValue) \($0.stepKey ?? "") \($0.detail)" }.joined(separator: "\n"))
    }

    /// Publishes a command to the coordinator as any AMQP client would.
    func sendCommand<Body: Encodable>(_ kind: WorkflowCommand.Kind, _ body: Body, replyTo: String? = nil, correlationID: String = UUID().uuidString) async throws {
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: correlationID, replyTo: replyTo,
            messageID: correlationID, type: kind.rawValue
        )
        try await requester.publish(AMQPMessage(routingKey: names.name(Topology.workflowCommandQueue), properties: properties, body: Array(try FlowJSON.encode(body))))
    }

    func sendQuery<Body: Encodable>(_ kind: WorkflowQuery.Kind, _ body: Body, replyTo: String) async throws {
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: UUID().uuidString, replyTo: replyTo, type: kind.rawValue
        )
        try await requester.publish(AMQPMessage(routingKey: names.name(Topology.workflowCommandQueue), properties: properties, body: Array(try FlowJSON.encode(body))))
    }

    func shutdown() async {
        await stopCoordinator()
        let task = workerTask.withLock { $0 }
        task?.cancel()
        _ = try? await task?.value
        await TestTransports.tearDown(requester, topology: names.topology, others: [coordinatorConnection.withLock { $0 }, workerConnection])
        try? FileManager.default.removeItem(at: dataFolder)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Counts how often each message id really ran: the side-effect counter.
final class RunCounter: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    func record(_ messageID: String) { counts.withLock { $0[messageID, default: 0] += 1 } }
    var all: [String: Int] { counts.withLock { $0 } }
}

/// A switch a test flips to "fix the cause" of a failing activity.
final class Switch: Sendable {
    private let state = Mutex(false)
    var isOn: Bool { state.withLock { $0 } }
    func turnOn() { state.withLock { $0 = true } }
}
