import FlowAMQP
import FlowCore
import FlowRuntime
import FlowTesting
import Foundation
import Testing

@Suite("the worker runtime on a real broker")
struct WorkerTests {
    /// Publishes a cancel request for `messageID` as any AMQP client would.
    private func requestCancel(_ messageID: String, _ harness: TestWorkerHarness) async throws {
        let cancel = ActivityCancel(messageID: messageID, reason: "the test asked")
        try await harness.requester.publish(AMQPMessage(
            exchange: harness.names.activityCancelExchange, routingKey: harness.names.queue(.default),
            properties: AMQPProperties(contentType: FlowProtocol.contentType, type: ActivityCancel.messageType), body: Array(try FlowJSON.encode(cancel))
        ))
    }

    @Test("a cancel request stops a running attempt: the reply says Cancelled, and it is neither retried nor dead-lettered")
    func cancelRunning() async throws {
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(SideEffects()) }
        try await harness.send("sleeps", input: "{}", messageID: "m-cancel", headers: [FlowProtocol.Header.startToCloseTimeout: .int(60_000)])
        try await waitUntil { harness.worker.statistics.inFlight == 1 }
        try await requestCancel("m-cancel", harness)
        let reply = try await harness.finalReply(to: "m-cancel", timeout: .seconds(30))
        #expect(reply.status == .failed && reply.error?.kind == .cancelled && reply.error?.message.contains("the test asked") == true, "\(reply)")
        // Counted right after the reply is sent.
        try await waitUntil { harness.worker.statistics.count(.cancelled) == 1 }
        #expect(harness.worker.statistics.count(.retried) == 0)
        #expect(harness.worker.statistics.count(.deadLettered) == 0)
        await harness.shutdown()
    }

    @Test("a cancel request that comes before its request answers it cancelled without running it")
    func cancelFirst() async throws {
        let effects = SideEffects()
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(effects) }
        // The worker is up (its cancel queue bound) once it answers.
        try await harness.send("typed", input: #"{"count": 1}"#, messageID: "m-up")
        _ = try await harness.finalReply(to: "m-up")
        try await requestCancel("m-early", harness)
        try await waitUntil { harness.worker.statistics.cancelRequests == 1 }
        try await harness.send("count_calls", input: #"{"key": "early"}"#, messageID: "m-early")
        let reply = try await harness.finalReply(to: "m-early", timeout: .seconds(30))
        #expect(reply.status == .failed && reply.error?.kind == .cancelled && reply.error?.message.contains("before it started") == true, "\(reply)")
        #expect(await effects.calls["early"] == nil, "it never ran")
        await harness.shutdown()
    }

    @Test("an activity completes with one reply carrying its output and the request's correlation id")
    func completes() async throws {
        let effects = SideEffects()
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(effects) }
        try await harness.send("typed", input: #"{"count": 21}"#, messageID: "m-typed")
        let reply = try await harness.finalReply(to: "m-typed")
        #expect(reply.status == .completed)
        #expect(reply.activity == "typed")
        #expect(reply.attempt == 1)
        #expect(reply.output?.text == #"{"doubled":42}"#)
        await harness.shutdown()
    }

    @Test("a duplicate message id is answered from the store and repeats no side effect")
    func duplicatesAreAbsorbed() async throws {
        let effects = SideEffects()
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(effects) }
        try await harness.send("count_calls", input: #"{"key": "dup"}"#, messageID: "m-dup")
        let first = try await harness.finalReply(to: "m-dup")
        try await harness.send("count_calls", input: #"{"key": "dup"}"#, messageID: "m-dup")
        try await harness.send("count_calls", input: #"{"key": "dup"}"#, messageID: "m-dup")
        // Wait for all three final replies: the first and the two answered from the store.
        let deadline = ContinuousClock.now + .seconds(10)
        while await harness.replies(to: "m-dup").count < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let replies = await harness.replies(to: "m-dup")
        #expect(replies.count == 3)
        #expect(replies.allSatisfy { $0 == first })
        #expect(await effects.calls["dup"] == 1)
        #expect(harness.worker.statistics.count(.duplicate) == 2)
        await harness.shutdown()
    }

    @Test("a retryable failure is retried by the broker after the policy's delay, with the attempt counted in a header")
    func retriesFollowThePolicy() async throws {
        let effects = SideEffects()
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(effects) }
        try await harness.send("flaky", input: #"{"key": "f", "succeedOnAttempt": 3}"#, messageID: "m-flaky")
        let reply = try await harness.finalReply(to: "m-flaky")
        #expect(reply.status == .completed)
        #expect(reply.attempt == 3)
        let attempts = await effects.attemptTimes("f")
        #expect(attempts.map(\.attempt) == [1, 2, 3])
        // The policy asks for 1 s between attempts; the broker's 1 s tier keeps it.
        for (earlier, later) in zip(attempts, attempts.dropFirst()) {
            #expect(later.at - earlier.at >= .milliseconds(900))
        }
        #expect(harness.worker.statistics.count(.retried) == 2)
        await harness.shutdown()
    }

    @Test("when attempts run out the reply says failed and the message is dead-lettered with the last error")
    func exhaustedAttemptsAreDeadLettered() async throws {
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(SideEffects()) }
        try await harness.send("always_fails", input: "{}", messageID: "m-fails")
        let reply = try await harness.finalReply(to: "m-fails")
        #expect(reply.status == .failed)
        #expect(reply.attempt == 3)
        #expect(reply.error?.type == "DependencyDown")
        #expect(reply.error?.message.contains("gave up after 3 attempts") == true)
        #expect(reply.error?.retryable == false)
        let dead = try #require(try await harness.deadLetters(count: 1).first)
        let headers = try #require(dead.properties.headers)
        #expect(headers[FlowProtocol.Header.errorType]?.stringValue == "DependencyDown")
        #expect(headers[FlowProtocol.Header.failureReason]?.stringValue?.contains("the dependency is down on attempt 3") == true)
        #expect(headers[FlowProtocol.Header.attempt]?.integerValue == 3)
        #expect(headers[FlowProtocol.Header.deadLetteredFrom]?.stringValue == harness.names.queue(.default))
        #expect(dead.properties.messageID == "m-fails")
        await harness.shutdown()
    }

    @Test("a non-retryable failure is not retried")
    func nonRetryableFailsAtOnce() async throws {
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(SideEffects()) }
        try await harness.send("rejects_input", input: "{}", messageID: "m-reject")
        let reply = try await harness.finalReply(to: "m-reject")
        #expect(reply.status == .failed)
        #expect(reply.attempt == 1)
        #expect(reply.error?.message == "this input can never work")
        #expect(harness.worker.statistics.count(.retried) == 0)
        await harness.shutdown()
    }

    @Test("each kind of poison message lands in the dead-letter queue with its reason while other messages keep flowing")
    func poisonMessagesAreDeadLettered() async throws {
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(SideEffects()) }
        try await harness.send("typed", input: "{not json", messageID: "p-malformed")
        try await harness.send("no_such_activity", input: "{}", messageID: "p-unknown")
        try await harness.send("typed", input: #"{"count": "many"}"#, messageID: "p-undecodable")
        try await harness.send("typed", input: #"{}"#, messageID: "p-missing-field")
        try await harness.sendRaw(properties: AMQPProperties(contentType: "application/json", deliveryMode: 2, type: "typed"), body: Array("{}".utf8))
        try await harness.sendRaw(properties: AMQPProperties(contentType: "application/json", deliveryMode: 2, messageID: "p-nameless"), body: Array("{}".utf8))
        try await harness.send("typed", input: "{}", messageID: "p-future", headers: [FlowProtocol.Header.protocolVersion: 2])
        try await harness.send("typed", input: #"{"count": 1}"#, messageID: "healthy")

        #expect(try await harness.finalReply(to: "healthy").status == .completed)
        let dead = try await harness.deadLetters(count: 7)
        var reasons: [String: (type: String, reason: String)] = [:]
        for delivery in dead {
            let headers = delivery.properties.headers ?? [:]
            reasons[delivery.properties.messageID ?? "none"] = (headers[FlowProtocol.Header.errorType]?.stringValue ?? "", headers[FlowProtocol.Header.failureReason]?.stringValue ?? "")
        }
        #expect(reasons["p-malformed"]?.type == "MalformedJSON")
        #expect(reasons["p-unknown"]?.type == "UnknownActivity")
        #expect(reasons["p-unknown"]?.reason.contains("no activity named 'no_such_activity'") == true)
        #expect(reasons["p-undecodable"]?.type == "InvalidInput")
        #expect(reasons["p-undecodable"]?.reason.contains("'count'") == true)
        #expect(reasons["p-missing-field"]?.reason.contains("field 'count' is missing") == true)
        #expect(reasons["none"]?.type == "MissingMessageID")
        #expect(reasons["p-nameless"]?.type == "MissingActivityName")
        #expect(reasons["p-future"]?.type == "UnsupportedProtocol")
        #expect(try await harness.finalReply(to: "p-unknown").error?.type == "UnknownActivity")
        await harness.shutdown()
    }

    @Test("progress reaches the reply queue while an activity runs, and a retry resumes from the last heartbeat")
    func heartbeatsReachRepliesAndRetries() async throws {
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(SideEffects()) }
        try await harness.send("resumes", input: "{}", messageID: "m-resume")
        let reply = try await harness.finalReply(to: "m-resume")
        #expect(reply.status == .completed)
        // The output type has no CodingKeys: the shared convention writes its key in snake case.
        #expect(reply.output?.text == #"{"resumed_from":5}"#)
        let progress = await harness.replies(to: "m-resume").filter { $0.status == .progress }
        #expect(progress.first?.progress?.text == #"{"step":5}"#)
        await harness.shutdown()
    }

    @Test("an activity past its start-to-close timeout is cancelled and counted as a failed attempt")
    func timeoutsFailTheAttempt() async throws {
        let harness = try await TestWorkerHarness { _, _, _ in testRegistry(SideEffects()) }
        try await harness.send("sleeps", input: "{}", messageID: "m-sleeps")
        let reply = try await harness.finalReply(to: "m-sleeps")
        #expect(reply.status == .failed)
        #expect(reply.error?.type == "StartToCloseTimeout")
        #expect(reply.attempt == 2)
        await harness.shutdown()
    }
}
