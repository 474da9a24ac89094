import FlowAMQP
import FlowCore
import FlowDeadLetters
import FlowRuntime
import FlowTesting
import Foundation
import Testing

struct FailsTwice: Activity {
    static let name = "fails_always"
    static let queue = WorkQueue.default
    static var retryPolicy: RetryPolicy { RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 1, maximumAttempts: 2) }
    typealias Input = Empty
    typealias Output = Empty
    func run(_ input: Empty, context: ActivityContext) async throws -> Empty {
        throw ActivityFailure.retryable(.init(rawValue: "DependencyDown"), "the API key expired")
    }
}

struct Refuses: Activity {
    static let name = "refuses"
    static let queue = WorkQueue.default
    typealias Input = Empty
    typealias Output = Empty
    func run(_ input: Empty, context: ActivityContext) async throws -> Empty {
        throw ActivityFailure.nonRetryable(.invalidInput, "missing file report.pdf")
    }
}

/// Publishes a message straight into a private dead-letter queue with the headers a worker
/// would have added.
func plant(
    _ connection: AMQPConnection, names: TopologyNames, id: String, queue: WorkQueue = .default, activity: String = "process_document_upload",
    errorType: String = "InvalidInput", error: String = "bad input", workflow: String? = nil, ageSeconds: Double = 0, replays: Int? = nil
) async throws {
    var headers: FieldTable = [
        FlowProtocol.Header.deadLetteredFrom: .string(names.queue(queue)),
        FlowProtocol.Header.errorType: .string(errorType),
        FlowProtocol.Header.failureReason: .string(error),
        FlowProtocol.Header.deadLetteredAt: .int(Int64((Date().timeIntervalSince1970 - ageSeconds) * 1000)),
        FlowProtocol.Header.attempt: 3,
    ]
    if let workflow { headers[FlowProtocol.Header.workflowID] = .string(workflow) }
    if let replays { headers[FlowProtocol.Header.replayCount] = .int(Int64(replays)) }
    let properties = AMQPProperties(contentType: "application/json", headers: headers, deliveryMode: 2, messageID: id, type: activity)
    try await connection.publish(AMQPMessage(routingKey: names.deadLetterQueue, properties: properties, body: Array(#"{"id": "\#(id)"}"#.utf8)))
}

/// Every message id now in a queue, in order, leaving the messages there.
func ids(in queue: String, on connection: any MessageTransport) async throws -> [String] {
    let expected = try await connection.inspectQueue(queue).messageCount
    guard expected > 0 else { return [] }
    let consumer = try await connection.consume(queue: queue, prefetch: 0)
    let box = Collected<String>()
    let reader = Task { for try await delivery in consumer { await box.add(delivery.properties.messageID ?? "?") } }
    await box.wait(forCount: expected, timeout: .seconds(20))
    let result = await box.all
    consumer.cancel()
    reader.cancel()
    let returnDeadline = ContinuousClock.now + .seconds(10)
    while try await connection.inspectQueue(queue).consumerCount > 0, ContinuousClock.now < returnDeadline {
        try await Task.sleep(for: .milliseconds(10))
    }
    return result
}

func auditFile() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("flow-audit-\(UUID().uuidString.prefix(8)).jsonl")
}

@Suite("the dead-letter queue tools")
struct DeadLetterTests {
    @Test("messages dead-lettered by every route list with their reasons and replay to the queues they died in")
    func everyRoute() async throws {
        let harness = try await TestWorkerHarness { _, _, _ in
            var registry = ActivityRegistry()
            registry.register(FailsTwice())
            registry.register(Refuses())
            return registry
        }
        let names = harness.names
        let connection = harness.requester
        // Worker routes: attempts exhausted, non-retryable error, unknown activity.
        try await harness.send("fails_always", input: "{}", messageID: "r-exhausted")
        try await harness.send("refuses", input: "{}", messageID: "r-nonretryable")
        try await harness.send("no_such_activity", input: "{}", messageID: "r-unknown")
        _ = try await harness.finalReply(to: "r-exhausted")
        _ = try await harness.finalReply(to: "r-unknown")
        await harness.stopWorker()

        // Broker routes: a consumer's reject, the delivery limit, an expired TTL.
        func publish(_ id: String, to queue: WorkQueue, expiration: String? = nil) async throws {
            let properties = AMQPProperties(contentType: "application/json", deliveryMode: 2, expiration: expiration, messageID: id, type: "analyze_document_content")
            try await connection.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(queue), properties: properties, body: Array("{}".utf8)))
        }
        try await publish("r-rejected", to: .ml)
        let ml = try await connection.consume(queue: names.queue(.ml), prefetch: 1)
        var mlIterator = ml.makeAsyncIterator()
        try await #require(try await mlIterator.next()).nack(requeue: false)
        ml.cancel()
        try await publish("r-limit", to: .openai)
        let openai = try await connection.consume(queue: names.queue(.openai), prefetch: 1)
        let requeuer = Task { for try await delivery in openai { try await delivery.nack(requeue: true) } }
        let limitDeadline = ContinuousClock.now + .seconds(20)
        while try await connection.inspectQueue(names.deadLetterQueue).messageCount < 5, ContinuousClock.now < limitDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        openai.cancel()
        requeuer.cancel()
        try await publish("r-expired", to: .ml, expiration: "1")

        // By hand, with pika, straight into the dead-letter queue.
        let script = """
        import sys, pika
        connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange="", routing_key=sys.argv[2], body=b"{}", mandatory=True,
            properties=pika.BasicProperties(message_id="r-by-hand", type="storage_put", delivery_mode=2))
        connection.close()
        """
        let url = TestBroker.url.hasSuffix("/") ? TestBroker.url + "%2F" : TestBroker.url
        let pika = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", script, url, names.deadLetterQueue])
        #expect(pika.status == 0, "\(pika.standardError)")

        let expectedCount = 7
        let deadline = ContinuousClock.now + .seconds(20)
        while try await connection.inspectQueue(names.deadLetterQueue).messageCount < expectedCount, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let audit = AuditLog(file: auditFile())
        let dlq = DeadLetterQueue(transport: connection, names: names, audit: audit)
        let listed = Dictionary(uniqueKeysWithValues: try await dlq.list(DeadLetterFilter()).map { ($0.id, $0) })
        #expect(listed.count == expectedCount)
        #expect(listed["r-exhausted"]?.reason == "failed")
        #expect(listed["r-exhausted"]?.errorType == "DependencyDown")
        #expect(listed["r-exhausted"]?.error?.contains("gave up after 2 attempts") == true)
        #expect(listed["r-exhausted"]?.attempts == 2)
        #expect(listed["r-nonretryable"]?.errorType == "InvalidInput")
        #expect(listed["r-unknown"]?.errorType == "UnknownActivity")
        #expect(listed["r-rejected"]?.reason == "rejected")
        #expect(listed["r-rejected"]?.queue == names.queue(.ml))
        #expect(listed["r-limit"]?.reason == "delivery_limit")
        #expect(listed["r-limit"]?.queue == names.queue(.openai))
        #expect(listed["r-expired"]?.reason == "expired")
        #expect(listed["r-by-hand"]?.reason == "unknown")
        #expect(listed["r-by-hand"]?.queue == nil)

        let report = try await dlq.replay(DeadLetterFilter(), operatorName: "tester")
        #expect(report.replayed.count == 6)
        #expect(report.refused.map(\.id) == ["r-by-hand"])
        #expect(Set(try await ids(in: names.queue(.default), on: connection)) == ["r-exhausted", "r-nonretryable", "r-unknown"])
        #expect(Set(try await ids(in: names.queue(.ml), on: connection)) == ["r-rejected", "r-expired"])
        #expect(try await ids(in: names.queue(.openai), on: connection) == ["r-limit"])
        #expect(try await ids(in: names.deadLetterQueue, on: connection) == ["r-by-hand"])
        // The one published by hand goes where the operator says.
        let manual = try await dlq.replay(DeadLetterFilter(messageID: "r-by-hand"), targetQueue: names.queue(.default), operatorName: "tester")
        #expect(manual.replayed.map(\.queue) == [names.queue(.default)])
        let entries = try audit.entries()
        #expect(entries.count == 7)
        #expect(entries.allSatisfy { $0["operator"] == "tester" && $0["action"] == "replay" && $0["to"] != nil })
        await harness.shutdown()
    }

    @Test("filters select exactly what they say, and listing leaves every message in order")
    func filters() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("dlq"))
        let connection = try await TestBroker.connect()
        try await connection.declare(names.topology)
        try await plant(connection, names: names, id: "a", queue: .default, activity: "parse_document", errorType: "InvalidInput", error: "chunk_size too small")
        try await plant(connection, names: names, id: "b", queue: .ml, activity: "train_organizational_model", errorType: "DatasetNotFound", error: "no such dataset", workflow: "wf-1")
        try await plant(connection, names: names, id: "c", queue: .openai, activity: "analyze_document_content", errorType: "AuthenticationFailed", error: "check OPENAI_API_KEY", workflow: "wf-1", ageSeconds: 7200)
        try await plant(connection, names: names, id: "d", queue: .default, activity: "parse_document", errorType: "MalformedJSON", error: "not JSON", ageSeconds: 90_000)
        let dlq = DeadLetterQueue(transport: connection, names: names, audit: nil)
        func select(_ filter: DeadLetterFilter) async throws -> [String] { try await dlq.list(filter).map(\.id) }

        #expect(try await select(DeadLetterFilter()) == ["a", "b", "c", "d"])
        #expect(try await select(DeadLetterFilter(queue: names.queue(.default))) == ["a", "d"])
        #expect(try await select(DeadLetterFilter(activity: "train_organizational_model")) == ["b"])
        #expect(try await select(DeadLetterFilter(reason: "MalformedJSON")) == ["d"])
        #expect(try await select(DeadLetterFilter(error: "openai_api_key")) == ["c"])
        #expect(try await select(DeadLetterFilter(olderThan: .seconds(3600))) == ["c", "d"])
        #expect(try await select(DeadLetterFilter(newerThan: .seconds(3600))) == ["a", "b"])
        #expect(try await select(DeadLetterFilter(olderThan: .seconds(3600), newerThan: .seconds(86_400))) == ["c"])
        #expect(try await select(DeadLetterFilter(messageID: "b")) == ["b"])
        #expect(try await select(DeadLetterFilter(workflowID: "wf-1")) == ["b", "c"])
        #expect(try await select(DeadLetterFilter(queue: names.queue(.default), reason: "InvalidInput")) == ["a"])
        // Listing held and returned every message, in its order.
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await ids(in: names.deadLetterQueue, on: connection) == ["a", "b", "c", "d"])
        for queue in names.topology.queues { _ = try? await connection.deleteQueue(queue.name) }
        await connection.close()
    }

    @Test("a dry run changes nothing; the replay limit refuses a poison message unless forced; replays count and reset attempts")
    func dryRunAndLimits() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("dlq"))
        let connection = try await TestBroker.connect()
        try await connection.declare(names.topology)
        try await plant(connection, names: names, id: "fresh")
        try await plant(connection, names: names, id: "poison", replays: 5)
        let audit = AuditLog(file: auditFile())
        let dlq = DeadLetterQueue(transport: connection, names: names, audit: audit)

        let dry = try await dlq.replay(DeadLetterFilter(), dryRun: true, operatorName: "tester")
        #expect(dry.replayed.map(\.id) == ["fresh"])
        #expect(dry.refused.map(\.id) == ["poison"])
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await ids(in: names.deadLetterQueue, on: connection) == ["fresh", "poison"])
        #expect(try await connection.inspectQueue(names.queue(.default)).messageCount == 0)
        #expect(try audit.entries().isEmpty)

        let real = try await dlq.replay(DeadLetterFilter(), operatorName: "tester")
        #expect(real.replayed.map(\.id) == ["fresh"])
        #expect(real.refused.first?.reason.contains("--force") == true)
        let forced = try await dlq.replay(DeadLetterFilter(messageID: "poison"), force: true, operatorName: "tester")
        #expect(forced.replayed.map(\.id) == ["poison"])

        let consumer = try await connection.consume(queue: names.queue(.default), prefetch: 10)
        var iterator = consumer.makeAsyncIterator()
        var headersByID: [String: FieldTable] = [:]
        for _ in 0..<2 {
            let delivery = try #require(try await iterator.next())
            headersByID[delivery.properties.messageID ?? ""] = delivery.properties.headers ?? [:]
            try await delivery.ack()
        }
        consumer.cancel()
        #expect(headersByID["fresh"]?[FlowProtocol.Header.replayCount]?.integerValue == 1)
        #expect(headersByID["poison"]?[FlowProtocol.Header.replayCount]?.integerValue == 6)
        #expect(headersByID["fresh"]?[FlowProtocol.Header.attempt]?.integerValue == 1)
        #expect(headersByID["fresh"]?[FlowProtocol.Header.failureReason] == nil)
        for queue in names.topology.queues { _ = try? await connection.deleteQueue(queue.name) }
        await connection.close()
    }

    @Test("export then purge then import restores the messages with their headers and types; purge is audited")
    func exportPurgeImport() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("dlq"))
        let connection = try await TestBroker.connect()
        try await connection.declare(names.topology)
        try await plant(connection, names: names, id: "x1", workflow: "wf-9")
        try await plant(connection, names: names, id: "x2")
        let audit = AuditLog(file: auditFile())
        let dlq = DeadLetterQueue(transport: connection, names: names, audit: audit)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("flow-export-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try await dlq.export(DeadLetterFilter(), to: file) == 2)
        let before = try await dlq.list(DeadLetterFilter())
        #expect(try await dlq.purge(DeadLetterFilter(), operatorName: "tester") == ["x1", "x2"])
        #expect(try await connection.inspectQueue(names.deadLetterQueue).messageCount == 0)
        #expect(try audit.entries().filter { $0["action"] == "purge" }.count == 2)
        #expect(try await dlq.importMessages(from: file, operatorName: "tester") == 2)
        let after = try await dlq.list(DeadLetterFilter())
        #expect(after.map(\.id) == before.map(\.id))
        #expect(after.map(\.workflowID) == before.map(\.workflowID))
        #expect(after.map(\.attempts) == before.map(\.attempts))
        #expect(after.map(\.deadLetteredAt) == before.map(\.deadLetteredAt))
        for queue in names.topology.queues { _ = try? await connection.deleteQueue(queue.name) }
        await connection.close()
    }
}

@Suite("replay under SIGKILL", .serialized)
struct ReplayKillTests {
    @Test("a queue of more letters than a quorum queue gives one consumer by default (2,000) lists whole")
    func beyondTheDefaultCredit() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("dlqmany"))
        let connection = try await TestBroker.connect()
        try await connection.declare(names.topology)
        let total = 2_600
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<10 {
                group.addTask {
                    for index in stride(from: lane, to: total, by: 10) { try await plant(connection, names: names, id: "m-\(index)", activity: index.isMultiple(of: 2) ? "parse_document" : "evaluate_model") }
                }
            }
            try await group.waitForAll()
        }
        let dlq = DeadLetterQueue(transport: connection, names: names, audit: nil)
        #expect(try await dlq.list(DeadLetterFilter()).count == total)
        #expect(try await dlq.list(DeadLetterFilter(activity: "evaluate_model")).count == total / 2)
        for queue in names.topology.queues { _ = try? await connection.deleteQueue(queue.name) }
        await connection.close()
    }

    @Test("a replay of 1,000 messages killed at random points three times loses none")
    func killedReplaysLoseNothing() async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("dlqkill"))
        let connection = try await TestBroker.connect()
        try await connection.declare(names.topology)
        let total = 1_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<10 {
                group.addTask {
                    for index in stride(from: lane, to: total, by: 10) { try await plant(connection, names: names, id: "k-\(index)") }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await connection.inspectQueue(names.deadLetterQueue).messageCount == total)

        for _ in 0..<3 {
            let audit = auditFile()
            let replay = try FlowProcess(
                ["dlq", "replay", "--topology-prefix", names.prefix!, "--amqp-url", TestBroker.url, "--operator-name", "kill-test"],
                environment: ["FLOW_AUDIT_LOG": audit.path]
            )
            // Kill it at a random point once it is moving messages, however slow the machine:
            // its audit log grows by one line per message moved.
            let startDeadline = ContinuousClock.now + .seconds(30)
            while replay.isRunning, (try? AuditLog(file: audit).entries().count) ?? 0 == 0, ContinuousClock.now < startDeadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 0...150)))
            replay.signal(SIGKILL)
            _ = try await replay.waitForExit(timeout: .seconds(10))
            try await Task.sleep(for: .milliseconds(500))
        }
        let back = try await ids(in: names.queue(.default), on: connection)
        let stillDead = try await ids(in: names.deadLetterQueue, on: connection)
        let everywhere = Set(back).union(stillDead)
        #expect(everywhere == Set((0..<total).map { "k-\($0)" }), "lost: \(Set((0..<total).map { "k-\($0)" }).subtracting(everywhere).sorted().prefix(10))")
        #expect(back.count > 0, "the replays should have moved some messages before being killed")
        for queue in names.topology.queues { _ = try? await connection.deleteQueue(queue.name) }
        await connection.close()
    }
}
