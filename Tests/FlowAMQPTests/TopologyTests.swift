import FlowAMQP
import FlowCore
import FlowTesting
import Foundation
import Testing

@Suite("the broker topology does what the system relies on")
struct TopologyTests {
    /// A private copy of the whole topology, every name prefixed, so a test can fill and
    /// drain its queues without touching the real ones on the shared broker.
    private func privateTopology(deliveryLimit: Int64 = Topology.defaultDeliveryLimit) -> (Topology, (String) -> String) {
        let names = TopologyNames(prefix: TestBroker.uniqueName("topology"), deliveryLimit: deliveryLimit)
        return (names.topology, names.name)
    }

    private func cleanUp(_ topology: Topology, on connection: AMQPConnection) async {
        for queue in topology.queues { _ = try? await connection.deleteQueue(queue.name) }
        for exchange in topology.exchanges { try? await connection.deleteExchange(exchange.name) }
    }

    @Test("declaring the code's topology over the imported broker/definitions.json changes nothing and conflicts with nothing")
    func codeDeclaresOverDefinitions() async throws {
        let connection = try await TestBroker.connect()
        try await connection.declare(Topology.flow())
        for queue in Topology.flow().queues {
            _ = try await connection.inspectQueue(queue.name)
        }
        await connection.close()
    }

    @Test("a delivery rejected by a worker lands in the dead-letter queue with reason and origin")
    func rejectedMessageIsDeadLettered() async throws {
        let connection = try await TestBroker.connect()
        let (topology, rename) = privateTopology()
        try await connection.declare(topology)
        let workQueue = rename(WorkQueue.default.queueName)
        var properties = AMQPProperties.persistent()
        properties.messageID = "reject-me"
        properties.type = "process_document_upload"
        try await connection.publish(AMQPMessage(exchange: rename(Topology.activitiesExchange), routingKey: workQueue, properties: properties, body: Array("{}".utf8)))

        let work = try await connection.consume(queue: workQueue, prefetch: 1)
        var workIterator = work.makeAsyncIterator()
        try await #require(try await workIterator.next()).nack(requeue: false)

        let dead = try await connection.consume(queue: rename(Topology.deadLetterQueue), prefetch: 1)
        var deadIterator = dead.makeAsyncIterator()
        let deadLetter = try #require(try await deadIterator.next())
        #expect(deadLetter.properties.messageID == "reject-me")
        #expect(deadLetter.properties.type == "process_document_upload")
        let headers = try #require(deadLetter.properties.headers)
        #expect(headers["x-first-death-reason"]?.stringValue == "rejected")
        #expect(headers["x-first-death-queue"]?.stringValue == workQueue)
        try await deadLetter.ack()
        work.cancel()
        dead.cancel()
        await cleanUp(topology, on: connection)
        await connection.close()
    }

    @Test("a message redelivered past the delivery limit (a handler that keeps crashing) is dead-lettered, not looped forever")
    func deliveryLimitDeadLetters() async throws {
        let connection = try await TestBroker.connect()
        let (topology, rename) = privateTopology(deliveryLimit: 2)
        try await connection.declare(topology)
        let workQueue = rename(WorkQueue.ml.queueName)
        try await connection.publish(AMQPMessage(exchange: rename(Topology.activitiesExchange), routingKey: workQueue, body: Array("poison".utf8)))

        let work = try await connection.consume(queue: workQueue, prefetch: 1)
        let dead = try await connection.consume(queue: rename(Topology.deadLetterQueue), prefetch: 1)
        // Requeueing is what the broker sees when a worker process dies holding the message.
        let requeuer = Task {
            for try await delivery in work { try await delivery.nack(requeue: true) }
        }
        var deadIterator = dead.makeAsyncIterator()
        let deadLetter = try #require(try await deadIterator.next())
        #expect(deadLetter.body == Array("poison".utf8))
        #expect(deadLetter.properties.headers?["x-first-death-reason"]?.stringValue == "delivery_limit")
        try await deadLetter.ack()
        requeuer.cancel()
        work.cancel()
        dead.cancel()
        await cleanUp(topology, on: connection)
        await connection.close()
    }

    @Test("a message parked in a retry tier returns to its own work queue after the tier's delay")
    func retryTierReturnsToWorkQueue() async throws {
        let connection = try await TestBroker.connect()
        let (topology, rename) = privateTopology()
        try await connection.declare(topology)
        let workQueue = rename(WorkQueue.openai.queueName)
        var properties = AMQPProperties.persistent()
        properties.headers = [Topology.retryDelayHeader: "1s", FlowProtocol.Header.attempt: 2]
        properties.messageID = "retry-me"
        let parkedAt = ContinuousClock.now
        try await connection.publish(AMQPMessage(exchange: rename(Topology.retryExchange), routingKey: workQueue, properties: properties, body: Array("again".utf8)))

        let work = try await connection.consume(queue: workQueue, prefetch: 1)
        var iterator = work.makeAsyncIterator()
        let returned = try #require(try await iterator.next())
        #expect(ContinuousClock.now - parkedAt >= .milliseconds(900))
        #expect(returned.properties.messageID == "retry-me")
        #expect(returned.properties.headers?[FlowProtocol.Header.attempt]?.integerValue == 2)
        #expect(returned.properties.headers?["x-first-death-reason"]?.stringValue == "expired")
        // It waited in the 1 s tier (read from its death record, not by looking at the tier
        // queue, which a slow machine may already have emptied).
        #expect(returned.properties.headers?["x-first-death-queue"]?.stringValue == rename(Topology.retryQueueName(Topology.retryDelayTiers[0])))
        try await returned.ack()
        work.cancel()
        await cleanUp(topology, on: connection)
        await connection.close()
    }
}
