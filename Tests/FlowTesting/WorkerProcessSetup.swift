import FlowAMQP
import FlowCore
import Foundation

/// A private topology, a data folder and a reply reader for tests that run the real
/// `flow worker` executable as a child process and send it signals.
public struct WorkerProcessSetup: Sendable {
    public let queue: WorkQueue
    public let names: TopologyNames
    public let dataFolder: URL
    public let requester: AMQPConnection
    public let replies: ReplyBox
    let consumer: AMQPConsumer
    let reader: Task<Void, any Error>

    /// `flow worker <queue>` on this topology and data folder, with `extra` flags after.
    public func workerArguments(concurrency: Int = 4, extra: [String] = []) -> [String] {
        ["worker", queue.workerName, "--topology-prefix", names.prefix!, "--data-dir", dataFolder.path, "--metrics-port", "off",
         "--concurrency", "\(concurrency)", "--grace-period", "20", "--amqp-url", TestBroker.url] + extra
    }

    public var workerArguments: [String] { workerArguments() }

    public static func make(queue: WorkQueue) async throws -> WorkerProcessSetup {
        let names = TopologyNames(prefix: TestBroker.uniqueName("process"))
        let dataFolder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-process-\(UUID().uuidString.prefix(8))")
        let requester = try await TestBroker.connect(name: "test process requester")
        try await requester.declare(names.topology)
        let replies = ReplyBox()
        let consumer = try await requester.consume(queue: names.coordinatorReplyQueue, prefetch: 200)
        let reader = Task {
            for try await delivery in consumer {
                try await delivery.ack()
                if let reply = try? FlowJSON.decode(ActivityReply.self, from: delivery.body) { await replies.add(reply) }
            }
        }
        return WorkerProcessSetup(queue: queue, names: names, dataFolder: dataFolder, requester: requester, replies: replies, consumer: consumer, reader: reader)
    }

    /// Publishes a request for `activity` to the setup's queue, replies to the reader.
    public func send(_ activity: String, input: String, messageID: String) async throws {
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: messageID,
            replyTo: names.coordinatorReplyQueue, messageID: messageID, type: activity
        )
        try await requester.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(queue), properties: properties, body: Array(input.utf8)))
    }

    /// Takes every ready message off `queue` and returns their message ids.
    public func takeAll(from queue: String) async throws -> Set<String> {
        try await takeAllMessages(from: queue).reduce(into: Set<String>()) { $0.insert($1.properties.messageID ?? "") }
    }

    /// Takes every ready message off `queue`, acknowledged, and returns them.
    public func takeAllMessages(from queue: String) async throws -> [AMQPDelivery] {
        let count = try await requester.inspectQueue(queue).messageCount
        guard count > 0 else { return [] }
        let drain = try await requester.consume(queue: queue, prefetch: 100)
        defer { drain.cancel() }
        var taken: [AMQPDelivery] = []
        for try await delivery in drain {
            try await delivery.ack()
            taken.append(delivery)
            if taken.count == count { break }
        }
        return taken
    }

    public func tearDown() async {
        consumer.cancel()
        reader.cancel()
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
        await requester.close()
        try? FileManager.default.removeItem(at: dataFolder)
    }
}

/// The replies a ``WorkerProcessSetup`` has read, in arrival order.
public actor ReplyBox {
    public private(set) var replies: [ActivityReply] = []

    public init() {}

    public func add(_ reply: ActivityReply) { replies.append(reply) }

    public var completedIDs: Set<String> { Set(replies.filter { $0.status == .completed }.map(\.messageID)) }
    public var failedCount: Int { replies.filter { $0.status == .failed }.count }
    public func finals(for messageID: String) -> [ActivityReply] { replies.filter { $0.messageID == messageID && $0.status != .progress } }
    public func progress(for messageID: String) -> [ActivityReply] { replies.filter { $0.messageID == messageID && $0.status == .progress } }

    public func wait(timeout: Duration = .seconds(30), until condition: @Sendable (isolated ReplyBox) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(self) {
            guard ContinuousClock.now < deadline else { throw AMQPError(.protocolFailure, "timed out after \(timeout) waiting for replies (have \(replies.count))") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
