import FlowAMQP
import FlowCore
import FlowTesting
import Foundation
import Testing

@Suite("publishing with confirms and consuming with acknowledgements")
struct PublishConsumeTests {
    @Test("10,000 persistent messages published with confirms are all consumed once, none lost and none duplicated")
    func tenThousandMessagesArriveExactlyOnce() async throws {
        let publisher = try await TestBroker.connect(name: "test publisher")
        let consumerConnection = try await TestBroker.connect(name: "test consumer")
        let queue = TestBroker.uniqueName("bulk")
        try await publisher.declare(Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum"])]))

        let total = 10_000
        let consumer = try await consumerConnection.consume(queue: queue, prefetch: 200)
        async let received: [Int] = {
            var seen: [Int] = []
            for try await delivery in consumer {
                seen.append(Int(String(decoding: delivery.body, as: UTF8.self))!)
                try await delivery.ack()
                if seen.count == total { break }
            }
            return seen
        }()

        try await withThrowingTaskGroup(of: Void.self) { group in
            for batch in stride(from: 0, to: total, by: 1_000) {
                group.addTask {
                    for index in batch..<(batch + 1_000) {
                        try await publisher.publish(AMQPMessage(routingKey: queue, body: Array(String(index).utf8)))
                    }
                }
            }
            try await group.waitForAll()
        }

        let seen = try await received
        #expect(seen.count == total)
        #expect(Set(seen) == Set(0..<total))
        consumer.cancel()
        // The last acks may still be on their way on a loaded machine; a lost one would
        // put its message back, and the count would never reach zero.
        try await waitUntil(timeout: .seconds(15)) { (try? await publisher.inspectQueue(queue).messageCount) == 0 }
        try await publisher.deleteQueue(queue)
        await publisher.close()
        await consumerConnection.close()
    }

    @Test("a message keeps its properties, headers and body through the broker")
    func propertiesSurviveTheRoundTrip() async throws {
        let connection = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("properties")
        try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        let consumer = try await connection.consume(queue: queue, prefetch: 1)

        let headers: FieldTable = [
            FlowProtocol.Header.attempt: 3,
            FlowProtocol.Header.workflowID: "wf-1",
            "flag": true,
            "ratio": .double(0.5),
            "nested": .table(["list": .array([1, "two"])]),
        ]
        let properties = AMQPProperties(
            contentType: "application/json", headers: headers, deliveryMode: 2, priority: 4, correlationID: "corr-1",
            replyTo: "replies", expiration: "60000", messageID: "msg-1", timestamp: 1_700_000_000, type: "process_document_upload",
            appID: "tests"
        )
        let body = Array(#"{"document":"a.pdf"}"#.utf8)
        try await connection.publish(AMQPMessage(routingKey: queue, properties: properties, body: body))

        var iterator = consumer.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        #expect(delivery.body == body)
        #expect(delivery.properties == properties)
        #expect(delivery.routingKey == queue)
        #expect(delivery.redelivered == false)
        try await delivery.ack()
        consumer.cancel()
        await connection.close()
    }

    @Test("a large message spanning many frames arrives whole")
    func largeMessagesArriveWhole() async throws {
        let connection = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("large")
        try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        let consumer = try await connection.consume(queue: queue, prefetch: 1)
        let body = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await connection.publish(AMQPMessage(routingKey: queue, body: body))
        var iterator = consumer.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        #expect(delivery.body == body)
        try await delivery.ack()
        consumer.cancel()
        await connection.close()
    }

    @Test("a consumer never holds more unacknowledged deliveries than its prefetch")
    func prefetchIsHonoured() async throws {
        let connection = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("prefetch")
        try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        for index in 0..<20 {
            try await connection.publish(AMQPMessage(routingKey: queue, body: Array("\(index)".utf8)))
        }
        let consumer = try await connection.consume(queue: queue, prefetch: 5)
        let held = Collected<AMQPDelivery>()
        let reader = Task {
            for try await delivery in consumer { await held.add(delivery) }
        }
        try #require(await held.wait(forCount: 5))
        // Give the broker ample time to (wrongly) send more.
        try await Task.sleep(for: .milliseconds(500))
        #expect(await held.count == 5)
        #expect(try await connection.inspectQueue(queue).messageCount == 15)

        try await held.all[0].ack()
        try #require(await held.wait(forCount: 6))
        try await Task.sleep(for: .milliseconds(300))
        #expect(await held.count == 6)
        consumer.cancel()
        _ = try await reader.value
        await connection.close()
    }

    @Test("a mandatory message that no queue takes fails its publish with a clear error")
    func unroutableMandatoryPublishFails() async throws {
        let connection = try await TestBroker.connect()
        let exchange = TestBroker.uniqueName("nowhere")
        try await connection.declare(Topology(exchanges: [.init(name: exchange, kind: .direct, durable: false, autoDelete: false)]))
        let error = await #expect(throws: AMQPError.self) {
            try await connection.publish(AMQPMessage(exchange: exchange, routingKey: "no-such-key", body: Array("lost?".utf8)))
        }
        #expect(error?.code == .unroutable)
        #expect(error?.message.contains("routing key 'no-such-key'") == true)
        // The same message without `mandatory` is accepted (and dropped by the broker, as AMQP says).
        try await connection.publish(AMQPMessage(exchange: exchange, routingKey: "no-such-key", body: Array("dropped".utf8), mandatory: false))
        try await connection.deleteExchange(exchange)
        await connection.close()
    }

    @Test("publishing to a missing exchange fails that publish only; the connection keeps working")
    func missingExchangeFailsOnlyItsPublish() async throws {
        let connection = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("after-error")
        try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        let error = await #expect(throws: AMQPError.self) {
            try await connection.publish(AMQPMessage(exchange: "no-such-exchange-\(UUID().uuidString)", routingKey: "x", body: []))
        }
        #expect(error?.code == .notFound)
        try await connection.publish(AMQPMessage(routingKey: queue, body: Array("still works".utf8)))
        #expect(try await connection.inspectQueue(queue).messageCount == 1)
        await connection.close()
    }

    @Test("a delivery nacked with requeue comes back marked redelivered")
    func nackWithRequeueRedelivers() async throws {
        let connection = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("requeue")
        try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        try await connection.publish(AMQPMessage(routingKey: queue, body: Array("again".utf8)))
        let consumer = try await connection.consume(queue: queue, prefetch: 1)
        var iterator = consumer.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(first.redelivered == false)
        try await first.nack(requeue: true)
        let second = try #require(try await iterator.next())
        #expect(second.redelivered)
        #expect(second.body == first.body)
        try await second.ack()
        consumer.cancel()
        await connection.close()
    }
}
