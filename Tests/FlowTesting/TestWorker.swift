import FlowAMQP
import FlowCore
import FlowRuntime
import Foundation
import Logging
import ServiceLifecycle

/// Where a test harness's connections go.
public enum TestTransports: Sendable {
    /// The test broker (RabbitMQ), on a private copy of the topology.
    case broker
    /// An ``InMemoryBroker``: no network, no broker process.
    case inMemory(InMemoryBroker)

    /// A connection, named for logs and the management UI.
    public func connect(_ name: String) async throws -> any MessageTransport {
        switch self {
        case .broker: return try await TestBroker.connect(name: name)
        case .inMemory(let broker): return broker.connect(name: name)
        }
    }

    func connect(_ first: String, _ second: String) async throws -> (any MessageTransport, any MessageTransport) {
        (try await connect(first), try await connect(second))
    }

    /// Closes a connection and, on the broker, deletes the topology it declared.
    public static func tearDown(_ requester: any MessageTransport, topology: Topology, others: [any MessageTransport]) async {
        if let requester = requester as? AMQPConnection {
            for queue in topology.queues { _ = try? await requester.deleteQueue(queue.name) }
            for exchange in topology.exchanges { try? await requester.deleteExchange(exchange.name) }
            await requester.close()
        }
        for other in others {
            if let connection = other as? AMQPConnection { await connection.close() }
            if let connection = other as? InMemoryTransport { connection.close() }
        }
    }
}

/// A worker running in the test process on a private copy of the topology (every name
/// prefixed), with a requester connection that publishes activities and collects replies.
public final class TestWorkerHarness: Sendable {
    public let names: TopologyNames
    public let requester: any MessageTransport
    public let workerConnection: any MessageTransport
    public let dataFolder: URL
    public let replyQueue: String
    private let replies: AMQPConsumer
    private let collected = ReplyCollector()
    private let runTask: Task<Void, any Error>
    private let collectTask: Task<Void, any Error>
    public let worker: Worker

    public init(
        queue: WorkQueue = .default, concurrency: Int = 4, transports: TestTransports = .broker,
        registry: (any MessageTransport, TopologyNames, URL) -> ActivityRegistry
    ) async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("worker"), deliveryLimit: 3)
        self.names = names
        (requester, workerConnection) = try await transports.connect("test requester", "test worker")
        dataFolder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dataFolder, withIntermediateDirectories: true)
        try await requester.declare(names.topology)
        replyQueue = names.coordinatorReplyQueue
        replies = try await requester.consume(queue: replyQueue, prefetch: 100)
        let configuration = WorkerConfiguration(queue: queue, names: names, concurrency: concurrency, dataFolder: dataFolder, shutdownGracePeriod: .seconds(5), workerID: "test-worker")
        let store = try ActivityResultStore(path: configuration.storePath)
        worker = Worker(configuration: configuration, registry: registry(workerConnection, names, dataFolder), transport: workerConnection, store: store, logger: TestBroker.logger)
        let worker = self.worker
        runTask = Task { try await worker.run() }
        let replies = self.replies
        let collected = self.collected
        collectTask = Task {
            for try await delivery in replies {
                try await delivery.ack()
                await collected.add(delivery)
            }
        }
    }

    /// Publishes an activity request as `docs/protocol.md` describes.
    public func send(_ activity: String, input: String, messageID: String = UUID().uuidString, queue: WorkQueue = .default, headers: FieldTable = [:], replyTo: Bool = true) async throws {
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: headers, deliveryMode: 2, correlationID: messageID,
            replyTo: replyTo ? replyQueue : nil, messageID: messageID, type: activity
        )
        try await requester.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(queue), properties: properties, body: Array(input.utf8)))
    }

    /// Publishes raw bytes and properties, for malformed messages.
    public func sendRaw(properties: AMQPProperties, body: [UInt8], queue: WorkQueue = .default) async throws {
        try await requester.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(queue), properties: properties, body: body))
    }

    /// Waits for the final reply (completed or failed) to a message id.
    public func finalReply(to messageID: String, timeout: Duration = .seconds(30)) async throws -> ActivityReply {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let reply = await collected.finalReply(messageID) { return reply }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw AMQPError(.protocolFailure, "no final reply to \(messageID) within \(timeout)")
    }

    /// Every reply received for a message id, progress included, in order.
    public func replies(to messageID: String) async -> [ActivityReply] {
        await collected.replies(messageID)
    }

    /// Takes up to `count` messages from the private dead-letter queue, waiting for them.
    public func deadLetters(count: Int, timeout: Duration = .seconds(30)) async throws -> [AMQPDelivery] {
        let consumer = try await requester.consume(queue: names.deadLetterQueue, prefetch: UInt16(count))
        let box = Collected<AMQPDelivery>()
        let reader = Task {
            for try await delivery in consumer { await box.add(delivery) }
        }
        await box.wait(forCount: count, timeout: timeout)
        let result = await box.all
        for delivery in result { try await delivery.ack() }
        consumer.cancel()
        reader.cancel()
        return result
    }

    /// Stops the worker (as a shutdown would), leaving the topology and messages in place.
    public func stopWorker() async {
        runTask.cancel()
        _ = try? await runTask.value
    }

    /// Stops the worker and removes the private topology and data.
    public func shutdown() async {
        runTask.cancel()
        _ = try? await runTask.value
        collectTask.cancel()
        replies.cancel()
        await TestTransports.tearDown(requester, topology: names.topology, others: [workerConnection])
        try? FileManager.default.removeItem(at: dataFolder)
    }
}

actor ReplyCollector {
    private var byMessage: [String: [ActivityReply]] = [:]

    func add(_ delivery: AMQPDelivery) {
        guard let reply = try? FlowJSON.decode(ActivityReply.self, from: delivery.body) else { return }
        byMessage[reply.messageID, default: []].append(reply)
    }

    func finalReply(_ messageID: String) -> ActivityReply? {
        byMessage[messageID]?.first { $0.status != .progress }
    }

    func replies(_ messageID: String) -> [ActivityReply] {
        byMessage[messageID] ?? []
    }
}
