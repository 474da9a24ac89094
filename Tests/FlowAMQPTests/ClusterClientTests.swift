import FlowAMQP
import FlowCore
import FlowTesting
import Foundation
import Testing

/// What a client of a cluster needs that a single broker shows too: starting while a listed
/// node is down, a consumer the broker cancels, and queues declared before their replica
/// count was. The 3-node tests are in `FlowClusterTests`.
@Suite("a client of several broker nodes, on the test broker")
struct ClusterClientTests {
    @Test("a connection opens while one of the nodes its URL lists is down, to the node that answers")
    func startsWhileANodeIsDown() async throws {
        let live = try AMQPConfiguration(url: TestBroker.url).endpoints[0]
        // Port 9 (discard) has no broker on loopback; the list is shuffled per connection,
        // so over several connections both orders are tried.
        for _ in 0..<4 {
            let connection = try await TestBroker.connect(name: "test two nodes", url: "amqp://guest:guest@127.0.0.1:9/,\(TestBroker.url)")
            #expect(connection.endpoint == live)
            await connection.close()
        }
    }

    @Test("when no listed node answers, the error names each one")
    func noNodeAnswers() async throws {
        let error = await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(try AMQPConfiguration(url: "amqp://127.0.0.1:9/,amqp://127.0.0.1:7/"), logger: TestBroker.logger)
        }
        #expect(error?.code == .brokerUnreachable)
        #expect(error?.message.contains("none of the 2 brokers") == true)
        #expect(error?.message.contains("127.0.0.1:9") == true)
        #expect(error?.message.contains("127.0.0.1:7") == true)
    }

    @Test("a close while the connection reconnects to a node that never answers (its address vanished with its container) returns at once, not after the connect timeout")
    func closeWhileConnectingToASilentNode() async throws {
        let silent = try SilentListener()
        try await DisposableBroker.with(port: 5785) { node in
            var configuration = try TestBroker.configuration(name: "test silent node", url: "\(node.url),amqp://guest:guest@127.0.0.1:\(silent.port)/")
            configuration.shufflesEndpoints = false
            configuration.connectTimeout = .seconds(300)
            let connection = try await AMQPConnection.connect(configuration, logger: TestBroker.logger)
            #expect(connection.endpoint?.port == node.port)
            // The dropped connection moves on to the next node, the silent one, where the
            // connect waits for its 300 s timeout unless the close cuts it short.
            _ = try await node.control("close_all_connections", "test: the node goes away")
            try await waitUntil(timeout: .seconds(30)) { !connection.isConnected }
            try await Task.sleep(for: .seconds(3))
            let closed = Collected<Bool>()
            let closing = Task {
                await connection.close()
                await closed.add(true)
            }
            try? await waitUntil(timeout: .seconds(60)) { await closed.all.count == 1 }
            #expect(await closed.all.count == 1, "close() waited on the connect to the silent node")
            closing.cancel()
        }
    }

    @Test("a consumer the broker cancels (its queue was deleted) declares its queue and binding again and goes on consuming")
    func cancelledConsumerSubscribesAgain() async throws {
        let worker = try await TestBroker.connect(name: "test cancelled consumer")
        let operator_ = try await TestBroker.connect(name: "test operator")
        let queue = TestBroker.uniqueName("cancelled")
        let exchange = TestBroker.uniqueName("cancelled-exchange")
        try await worker.declare(
            Topology(
                exchanges: [.init(name: exchange, kind: .direct, durable: false, autoDelete: true)],
                queues: [.init(name: queue, arguments: ["x-queue-type": "quorum"])],
                bindings: [.init(exchange: exchange, queue: queue, routingKey: "work")]
            )
        )
        let consumer = try await worker.consume(queue: queue, prefetch: 10)
        var deliveries = consumer.makeAsyncIterator()

        try await operator_.publish(AMQPMessage(exchange: exchange, routingKey: "work", body: Array("before".utf8)))
        let before = try #require(try await deliveries.next())
        #expect(before.body == Array("before".utf8))
        try await before.ack()

        try await operator_.deleteQueue(queue)
        try await waitUntil(timeout: .seconds(20)) {
            (try? await operator_.inspectQueue(queue).consumerCount) == 1
        }
        try await operator_.publish(AMQPMessage(exchange: exchange, routingKey: "work", body: Array("after".utf8), mandatory: true))
        let after = try #require(try await deliveries.next())
        #expect(after.body == Array("after".utf8))
        try await after.ack()

        consumer.cancel()
        try await operator_.deleteQueue(queue)
        await worker.close()
        await operator_.close()
    }

    @Test("a consumer of a queue it did not declare ends, saying why, when the broker deletes the queue")
    func cancelledConsumerOfAForeignQueueEnds() async throws {
        let worker = try await TestBroker.connect(name: "test cancelled consumer")
        let operator_ = try await TestBroker.connect(name: "test operator")
        let queue = TestBroker.uniqueName("foreign")
        try await operator_.declare(Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum"])]))
        let consumer = try await worker.consume(queue: queue, prefetch: 10)
        try await operator_.deleteQueue(queue)

        let error = await #expect(throws: AMQPError.self) {
            for try await _ in consumer {}
        }
        #expect(error?.code == .notFound)
        #expect(error?.queue == queue)
        #expect(error?.message.contains("the broker cancelled the consumer of queue '\(queue)' and it could not subscribe again") == true)
        // The connection itself goes on working.
        #expect(worker.isConnected)
        try await worker.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        await worker.close()
        await operator_.close()
    }

    @Test("a queue that exists with another initial replica count (made before the count was declared) is used as it is")
    func queueWithAnotherReplicaCount() async throws {
        let old = try await TestBroker.connect(name: "test old deployment")
        let upgraded = try await TestBroker.connect(name: "test upgraded worker")
        let queue = TestBroker.uniqueName("upgrade")
        try await old.declare(Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum"])]))

        try await upgraded.declare(
            Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum", "x-quorum-initial-group-size": 3])])
        )
        let consumer = try await upgraded.consume(queue: queue, prefetch: 1)
        try await old.publish(AMQPMessage(routingKey: queue, body: Array("still works".utf8)))
        var deliveries = consumer.makeAsyncIterator()
        let delivery = try #require(try await deliveries.next())
        #expect(delivery.body == Array("still works".utf8))
        try await delivery.ack()

        // Made with another count, the same.
        let five = TestBroker.uniqueName("upgrade-five")
        try await old.declare(Topology(queues: [.init(name: five, arguments: ["x-queue-type": "quorum", "x-quorum-initial-group-size": 5])]))
        try await upgraded.declare(Topology(queues: [.init(name: five, arguments: ["x-queue-type": "quorum", "x-quorum-initial-group-size": 3])]))
        try await old.deleteQueue(five)

        // Any other difference is still refused: the fallback is for the replica count alone.
        let error = await #expect(throws: AMQPError.self) {
            try await upgraded.declare(
                Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum", "x-quorum-initial-group-size": 3, "x-delivery-limit": 7])])
            )
        }
        #expect(error?.code == .preconditionFailed)
        consumer.cancel()
        try await old.deleteQueue(queue)
        await old.close()
        await upgraded.close()
    }
}
