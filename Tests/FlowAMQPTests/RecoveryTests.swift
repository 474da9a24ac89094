import FlowAMQP
import FlowCore
import FlowTesting
import Foundation
import Testing

/// These tests stop the broker and cut its connections, so each runs on a node of its own
/// (started with broker/start on other ports) and never disturbs the tests beside it.
@Suite("recovery after the connection drops", .serialized)
struct RecoveryTests {
    @Test("after a broker restart mid-stream, every confirmed message is consumed")
    func brokerRestart() async throws {
        try await DisposableBroker.with(port: 5781) { node in
            try await assertEveryConfirmedMessageArrives(on: node) {
                try await node.control("stop_app")
                try await Task.sleep(for: .seconds(1))
                try await node.control("start_app")
            }
        }
    }

    @Test("after close_all_connections mid-stream, every confirmed message is consumed")
    func closeAllConnections() async throws {
        try await DisposableBroker.with(port: 5782) { node in
            try await assertEveryConfirmedMessageArrives(on: node) {
                try await node.control("close_all_connections", "test disruption")
            }
        }
    }

    @Test("a publish that may not be retried is reported, not dropped, when the connection dies before its confirm")
    func nonRetriedPublishIsReported() async throws {
        try await DisposableBroker.with(port: 5783) { node in
            var configuration = try TestBroker.configuration(name: "no-retry publisher", url: node.url)
            configuration.recovery.enabled = false
            let connection = try await AMQPConnection.connect(configuration, logger: TestBroker.logger)
            let queue = TestBroker.uniqueName("no-retry")
            try await connection.declare(Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum"])]))

            // Thirty-two lanes publish 16 KiB messages until the drop stops them, so some are
            // unconfirmed when it comes (with eight lanes of small messages, a loaded machine's
            // broker once confirmed them all before closing); each ends with the error its last
            // publish got, which must say the message was not confirmed.
            let confirmed = Counter()
            let endings = try await withThrowingTaskGroup(of: AMQPError?.self) { group in
                for lane in 0..<32 {
                    group.addTask {
                        let deadline = ContinuousClock.now + .seconds(60)
                        var index = 0
                        while ContinuousClock.now < deadline {
                            do {
                                try await connection.publish(AMQPMessage(routingKey: queue, body: Array("\(lane)-\(index)".utf8) + Array(repeating: 0x2E, count: 16_384)), retryOnReconnect: false)
                                _ = await confirmed.next()
                                index += 1
                            } catch let error as AMQPError {
                                return error
                            }
                        }
                        return nil
                    }
                }
                group.addTask {
                    // Bounded like the lanes: had the connection died first (a missed heartbeat
                    // on a starved machine), 500 would never come and the test would hang.
                    let deadline = ContinuousClock.now + .seconds(60)
                    while await confirmed.peek() < 500, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
                    try await node.control("close_all_connections", "test disruption")
                    return nil
                }
                var endings: [AMQPError] = []
                for try await ending in group { if let ending { endings.append(ending) } }
                return endings
            }
            #expect(endings.count == 32, "every lane should have been stopped by the drop")
            for error in endings {
                #expect([.connectionLost, .closed].contains(error.code), "\(error)")
            }
            #expect(endings.contains { $0.code == .connectionLost && $0.message.contains("may or may not have been delivered") })
        }
    }

    @Test("a delivery of a dropped connection cannot be acknowledged; the broker redelivers it on the new one")
    func staleDeliveryIsRedelivered() async throws {
        try await DisposableBroker.with(port: 5784) { node in
            let connection = try await AMQPConnection.connect(try TestBroker.configuration(name: "test stale", url: node.url), logger: TestBroker.logger)
            let queue = TestBroker.uniqueName("stale")
            try await connection.declare(Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum"])]))
            try await connection.publish(AMQPMessage(routingKey: queue, body: Array("once".utf8)))
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            var iterator = consumer.makeAsyncIterator()
            let first = try #require(try await iterator.next())

            #expect(connection.isConnected)
            try await node.control("close_all_connections", "test disruption")
            let second = try #require(try await iterator.next())
            #expect(second.redelivered)
            #expect(second.body == first.body)
            let error = await #expect(throws: AMQPError.self) { try await first.ack() }
            #expect(error?.code == .staleDelivery)
            try await second.ack()
            #expect(connection.recoveryCount == 1)
            #expect(connection.isConnected)
            consumer.cancel()
            await connection.close()
            #expect(!connection.isConnected)
        }
    }

    /// Publishes and consumes on two connections while `disrupt` runs, and goes on
    /// publishing until both connections have recovered, then checks that every message
    /// whose publish returned was consumed.
    private func assertEveryConfirmedMessageArrives(on node: DisposableBroker, disrupt: @escaping @Sendable () async throws -> Void) async throws {
        let publisher = try await AMQPConnection.connect(try TestBroker.configuration(name: "test publisher", url: node.url), logger: TestBroker.logger)
        let consumerConnection = try await AMQPConnection.connect(try TestBroker.configuration(name: "test consumer", url: node.url), logger: TestBroker.logger)
        let queue = TestBroker.uniqueName("recovery")
        try await publisher.declare(Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum"])]))

        let confirmed = IDSet()
        let consumed = IDSet()
        let sequence = Counter()
        let consumer = try await consumerConnection.consume(queue: queue, prefetch: 50)
        let consuming = Task {
            for try await delivery in consumer {
                let id = Int(String(decoding: delivery.body, as: UTF8.self))!
                do {
                    try await delivery.ack()
                    await consumed.insert(id)
                } catch let error as AMQPError where error.code == .staleDelivery {
                    continue  // redelivered by the broker on the new connection
                }
            }
        }

        let recovered: @Sendable () -> Bool = { publisher.recoveryCount >= 1 && consumerConnection.recoveryCount >= 1 }
        let deadline = ContinuousClock.now + .seconds(90)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var sentAfterRecovery = 0
                    while sentAfterRecovery < 200, ContinuousClock.now < deadline {
                        let index = await sequence.next()
                        try await publisher.publish(AMQPMessage(routingKey: queue, body: Array("\(index)".utf8)))
                        await confirmed.insert(index)
                        if recovered() { sentAfterRecovery += 1 }
                    }
                }
            }
            group.addTask {
                while await confirmed.count < 500 { try await Task.sleep(for: .milliseconds(5)) }
                try await disrupt()
            }
            try await group.waitForAll()
        }
        #expect(recovered(), "both connections should have recovered from the disruption")

        let consumeDeadline = ContinuousClock.now + .seconds(60)
        while await !consumed.contains(all: confirmed.values), ContinuousClock.now < consumeDeadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let missing = await confirmed.values.subtracting(consumed.values)
        #expect(await confirmed.count > 1_000)
        consumer.cancel()
        // How the consumer's stream ended, if it ended before the test cancelled it.
        let ended: String
        do {
            try await consuming.value
            ended = "it finished"
        } catch {
            ended = "it failed: \(error)"
        }
        #expect(missing.isEmpty, "confirmed but never consumed: \(missing.sorted().prefix(20)) of \(missing.count); the consumer: \(ended)")
        await publisher.close()
        await consumerConnection.close()
    }
}

actor IDSet {
    private(set) var values: Set<Int> = []
    var count: Int { values.count }
    func insert(_ value: Int) { values.insert(value) }
    func contains(all others: Set<Int>) -> Bool { values.isSuperset(of: others) }
}

actor Counter {
    private var value = 0
    func next() -> Int {
        defer { value += 1 }
        return value
    }
    func peek() -> Int { value }
}
