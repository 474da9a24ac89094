import FlowAMQP
import FlowCore
import FlowTesting
import Foundation
import Testing

/// Operators publish activities from any AMQP client; these tests use the real ones the
/// protocol document shows (amqp-tools' amqp-publish and Python's pika).
@Suite("messages from other AMQP clients")
struct InteroperabilityTests {
    private func receiveOne(from queue: String, on connection: AMQPConnection) async throws -> AMQPDelivery {
        let consumer = try await connection.consume(queue: queue, prefetch: 1)
        var iterator = consumer.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        try await delivery.ack()
        consumer.cancel()
        return delivery
    }

    @Test("amqp-publish sends header values as strings; they read as the integers they spell")
    func amqpPublishHeaders() async throws {
        let connection = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("amqp-publish")
        try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        // amqp-publish cannot set the `type` and `message_id` properties, so the protocol
        // accepts them as headers; and rabbitmq-c reads a trailing "/" in a URL as the
        // empty vhost, so the URL it gets has none.
        let url = TestBroker.url.hasSuffix("/") ? String(TestBroker.url.dropLast()) : TestBroker.url
        let result = try await ProcessRunner.run(
            "/usr/bin/amqp-publish",
            [
                "--url", url, "-r", queue, "-p", "-C", FlowProtocol.contentType,
                "-H", "\(FlowProtocol.Header.activity): process_document_upload",
                "-H", "\(FlowProtocol.Header.messageID): msg-42",
                "-H", "\(FlowProtocol.Header.attempt): 2", "-b", #"{"document_id":"d1"}"#,
            ]
        )
        #expect(result.status == 0, "amqp-publish failed: \(result.standardError)")
        let delivery = try await receiveOne(from: queue, on: connection)
        let headers = try #require(delivery.properties.headers)
        #expect(headers[FlowProtocol.Header.activity]?.stringValue == "process_document_upload")
        #expect(headers[FlowProtocol.Header.messageID]?.stringValue == "msg-42")
        #expect(headers[FlowProtocol.Header.attempt] == .string("2"))
        #expect(headers[FlowProtocol.Header.attempt]?.integerValue == 2)
        #expect(delivery.properties.deliveryMode == 2)
        #expect(String(decoding: delivery.body, as: UTF8.self) == #"{"document_id":"d1"}"#)
        await connection.close()
    }

    @Test("pika sends header values as integers; they read as integers too")
    func pikaHeaders() async throws {
        let connection = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("pika")
        try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        let script = """
        import pika, sys
        connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange="", routing_key=sys.argv[2], body=b'{"document_id": "d2"}', mandatory=True,
            properties=pika.BasicProperties(
                content_type="application/json", delivery_mode=2, type="process_document_upload",
                message_id="msg-43", headers={"flow-attempt": 3, "flow-workflow-id": "wf-9"}))
        connection.close()
        """
        let result = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", script, TestBroker.url, queue])
        #expect(result.status == 0, "pika failed (pip install pika): \(result.standardError)")
        let delivery = try await receiveOne(from: queue, on: connection)
        #expect(delivery.properties.headers?[FlowProtocol.Header.attempt]?.integerValue == 3)
        #expect(delivery.properties.headers?[FlowProtocol.Header.workflowID]?.stringValue == "wf-9")
        #expect(delivery.properties.messageID == "msg-43")
        await connection.close()
    }
}
