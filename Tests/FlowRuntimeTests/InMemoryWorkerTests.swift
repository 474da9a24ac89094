import FlowCore
import FlowRuntime
import FlowTransport
import FlowTesting
import Foundation
import Testing

/// The worker runtime on the in-memory transport: the same rules as `WorkerTests`, and the
/// failures a real broker cannot be told to produce on cue. No broker is needed.
@Suite("the worker runtime on the in-memory transport")
struct InMemoryWorkerTests {
    private func harness(_ broker: InMemoryBroker = InMemoryBroker(), effects: SideEffects = SideEffects()) async throws -> TestWorkerHarness {
        try await TestWorkerHarness(transports: .inMemory(broker)) { _, _, _ in testRegistry(effects) }
    }

    @Test("an activity completes with one reply and its request is acknowledged")
    func completes() async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker)
        try await harness.send("typed", input: #"{"count": 21}"#, messageID: "m-typed")
        let reply = try await harness.finalReply(to: "m-typed", timeout: .seconds(120))
        #expect(reply.status == .completed)
        #expect(reply.output?.text == #"{"doubled":42}"#)
        try await waitUntil { broker.unsettledCount(in: harness.names.queue(.default)) == 0 }
        #expect(broker.messages(in: harness.names.queue(.default)).isEmpty)
        await harness.shutdown()
    }

    @Test("a request delivered twice runs once; the copy is answered from the store")
    func duplicateDeliveryRunsOnce() async throws {
        let broker = InMemoryBroker()
        let effects = SideEffects()
        let harness = try await harness(broker, effects: effects)
        broker.inject(.duplicate) { $0.properties.type == "count_calls" }
        try await harness.send("count_calls", input: #"{"key": "twice"}"#, messageID: "m-twice")
        try await waitUntil { await harness.replies(to: "m-twice").count == 2 }
        let replies = await harness.replies(to: "m-twice")
        #expect(replies[0] == replies[1])
        #expect(await effects.calls["twice"] == 1)
        #expect(harness.worker.statistics.count(.duplicate) == 1)
        await harness.shutdown()
    }

    @Test("a retryable failure goes through a delay tier and comes back with the attempt counted")
    func retriesThroughTheTiers() async throws {
        let broker = InMemoryBroker()
        let effects = SideEffects()
        let harness = try await harness(broker, effects: effects)
        try await harness.send("flaky", input: #"{"key": "f", "succeedOnAttempt": 3}"#, messageID: "m-flaky")
        let reply = try await harness.finalReply(to: "m-flaky", timeout: .seconds(120))
        #expect(reply.status == .completed)
        #expect(reply.attempt == 3)
        #expect(await effects.attemptTimes("f").map(\.attempt) == [1, 2, 3])
        let tiers = broker.published.filter { $0.exchange == harness.names.retryExchange }
        #expect(tiers.count == 2)
        #expect(tiers.allSatisfy { $0.properties.headers?[Topology.retryDelayHeader]?.stringValue == "1s" })
        #expect(tiers.map { $0.properties.headers?[FlowProtocol.Header.attempt]?.integerValue } == [2, 3])
        await harness.shutdown()
    }

    @Test("a retry waits in its tier until the tier's time has passed")
    func retryWaitsInItsTier() async throws {
        let broker = InMemoryBroker(delaysExpireAtOnce: false)
        let effects = SideEffects()
        let harness = try await harness(broker, effects: effects)
        try await harness.send("flaky", input: #"{"key": "w", "succeedOnAttempt": 2}"#, messageID: "m-wait")
        let tier = harness.names.name(Topology.retryQueueName(Topology.retryDelayTiers[0]))
        try await waitUntil { broker.messages(in: tier).count == 1 }
        #expect(await harness.replies(to: "m-wait").isEmpty)
        broker.expireDelayedMessages()
        #expect(try await harness.finalReply(to: "m-wait", timeout: .seconds(120)).attempt == 2)
        await harness.shutdown()
    }

    @Test("poison messages are dead-lettered with their reasons and the worker keeps going")
    func poisonIsDeadLettered() async throws {
        let harness = try await harness()
        try await harness.send("typed", input: "{not json", messageID: "p-malformed")
        try await harness.send("no_such_activity", input: "{}", messageID: "p-unknown")
        try await harness.send("typed", input: "{}", messageID: "p-future", headers: [FlowProtocol.Header.protocolVersion: 2])
        try await harness.send("typed", input: #"{"count": 1}"#, messageID: "healthy")
        #expect(try await harness.finalReply(to: "healthy", timeout: .seconds(120)).status == .completed)
        let dead = try await harness.deadLetters(count: 3, timeout: .seconds(120))
        let types = Dictionary(uniqueKeysWithValues: dead.map { ($0.properties.messageID ?? "", $0.properties.headers?[FlowProtocol.Header.errorType]?.stringValue ?? "") })
        #expect(types == ["p-malformed": "MalformedJSON", "p-unknown": "UnknownActivity", "p-future": "UnsupportedProtocol"])
        await harness.shutdown()
    }

    @Test("when the connection drops mid-activity the acknowledgement is stale, the broker redelivers, and the copy is answered from the store")
    func connectionDropDuringActivity() async throws {
        let broker = InMemoryBroker()
        let effects = SideEffects()
        let harness = try await harness(broker, effects: effects)
        // The reply's publish takes the worker's connection down before its confirm: the
        // worker's acknowledgement of the request then belongs to a dead connection.
        broker.inject(.dropConnectionBeforeConfirm) { $0.routingKey == harness.replyQueue }
        try await harness.send("count_calls", input: #"{"key": "drop"}"#, messageID: "m-drop")
        try await waitUntil { await harness.replies(to: "m-drop").count >= 3 }
        let replies = await harness.replies(to: "m-drop")
        #expect(Set(replies.map(\.output?.text)) == [#"{"calls":1}"#], "every reply carries the one run's output")
        #expect(await effects.calls["drop"] == 1)
        #expect(harness.workerConnection.recoveryCount == 1)
        #expect(harness.worker.statistics.count(.duplicate) == 1, "the redelivered request is answered from the store")
        try await waitUntil { broker.unsettledCount(in: harness.names.queue(.default)) == 0 }
        #expect(broker.messages(in: harness.names.queue(.default)).isEmpty)
        await harness.shutdown()
    }

    @Test("a reply the broker refuses again and again (a quorum queue electing a leader) is published again while its request waits unacknowledged, so the refusals do not use up the delivery limit")
    func refusedReplyIsPublishedAgain() async throws {
        let broker = InMemoryBroker()
        let effects = SideEffects()
        let harness = try await harness(broker, effects: effects)
        // More refusals in a row than the harness queue's delivery limit (3): returning the
        // request at each one would have dead-lettered it.
        let refusals = harness.names.deliveryLimit + 1
        broker.inject(.refuse(AMQPError(.publishNacked, "the broker refused the reply")), times: Int(refusals)) { $0.routingKey == harness.replyQueue }
        try await harness.send("count_calls", input: #"{"key": "nack"}"#, messageID: "m-nack")
        let reply = try await harness.finalReply(to: "m-nack", timeout: .seconds(120))
        #expect(reply.status == .completed)
        #expect(reply.output?.text == #"{"calls":1}"#)
        #expect(await effects.calls["nack"] == 1)
        #expect(harness.worker.statistics.count(.duplicate) == 0, "the request was delivered once: the reply came from the run, not from the store")
        #expect(broker.published.filter { $0.routingKey == harness.replyQueue }.count == 1, "the refused replies were never taken")
        #expect(broker.messages(in: harness.names.deadLetterQueue).isEmpty)
        try await waitUntil { broker.unsettledCount(in: harness.names.queue(.default)) == 0 }
        #expect(broker.messages(in: harness.names.queue(.default)).isEmpty)
        await harness.shutdown()
    }

    @Test("a request that crashes its handler every time stops at the queue's delivery limit, in the dead-letter queue")
    func deliveryLimitEndsARedeliveryLoop() async throws {
        let broker = InMemoryBroker()
        let requester = broker.connect(name: "requester")
        let names = TopologyNames(prefix: "limit", deliveryLimit: 2)
        try await requester.declare(names.topology)
        try await requester.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(.default), body: Array("{}".utf8)))
        // A consumer whose process "dies" with each delivery: its connection drops unsettled.
        for _ in 0..<3 {
            let victim = broker.connect(name: "crashing worker")
            let consumer = try await victim.consume(queue: names.queue(.default), prefetch: 1)
            var iterator = consumer.makeAsyncIterator()
            _ = try await iterator.next()
            victim.close()
        }
        let dead = broker.messages(in: names.deadLetterQueue)
        #expect(dead.count == 1)
        #expect(dead.first?.properties.headers?["x-first-death-reason"]?.stringValue == "delivery_limit")
        #expect(broker.messages(in: names.queue(.default)).isEmpty)
    }
}
