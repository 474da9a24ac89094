import FlowAMQP
import FlowCore
import FlowDefaultActivities
import FlowRuntime
import FlowTesting
import Foundation
import Testing

/// Activities published by other AMQP clients, following only docs/protocol.md, run and reply.
@Suite("activities from other AMQP clients")
struct ProtocolClientTests {
    private func harness() async throws -> TestWorkerHarness {
        try await TestWorkerHarness { connection, names, folder in
            DefaultActivities.registry(transport: connection, names: names, dataFolder: DataFolder(folder), workerID: "test")
        }
    }

    @Test("amqp-publish with the activity and message id in headers gets a completed reply")
    func amqpPublish() async throws {
        let harness = try await harness()
        let url = TestBroker.url.hasSuffix("/") ? String(TestBroker.url.dropLast()) : TestBroker.url
        let result = try await ProcessRunner.run(
            "/usr/bin/amqp-publish",
            [
                "--url", url, "-e", harness.names.activitiesExchange, "-r", harness.names.queue(.default), "-p",
                "-C", "application/json", "-t", harness.replyQueue,
                "-H", "flow-activity: storage_put", "-H", "flow-message-id: by-hand-1", "-H", "flow-attempt: 1",
                "-b", #"{"text": "published by hand"}"#,
            ]
        )
        #expect(result.status == 0, "\(result.standardError)")
        let reply = try await harness.finalReply(to: "by-hand-1")
        #expect(reply.status == .completed)
        #expect(reply.activity == "storage_put")
        #expect(reply.output?.text.contains(#""size":17"#) == true)
        await harness.shutdown()
    }

    @Test("pika, as in the protocol document's example, publishes and reads the reply itself")
    func pika() async throws {
        let harness = try await harness()
        let script = """
        import json, sys, uuid, pika
        url, exchange, queue = sys.argv[1], sys.argv[2], sys.argv[3]
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.confirm_delivery()
        replies = channel.queue_declare(queue="", exclusive=True).method.queue
        request_id = str(uuid.uuid4())
        channel.basic_publish(
            exchange=exchange, routing_key=queue, mandatory=True,
            body=json.dumps({"text": "from pika"}),
            properties=pika.BasicProperties(
                type="storage_put", message_id=request_id, correlation_id=request_id,
                reply_to=replies, content_type="application/json", delivery_mode=2,
                headers={"flow-attempt": 1}))
        for method, properties, body in channel.consume(replies, auto_ack=True, inactivity_timeout=30):
            if body is None:
                sys.exit("no reply within 30 s")
            reply = json.loads(body)
            if reply["status"] != "progress":
                assert properties.correlation_id == request_id, properties.correlation_id
                assert properties.type == "flow.reply.completed", properties.type
                print(json.dumps(reply))
                break
        connection.close()
        """
        let url = TestBroker.url.hasSuffix("/") ? TestBroker.url + "%2F" : TestBroker.url
        let result = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", script, url, harness.names.activitiesExchange, harness.names.queue(.default)])
        #expect(result.status == 0, "\(result.standardError)")
        let reply = try FlowJSON.decoder.decode(ActivityReply.self, from: Data(result.standardOutput.utf8))
        #expect(reply.status == .completed)
        #expect(reply.output?.text.contains(#""size":9"#) == true)
        await harness.shutdown()
    }
}
