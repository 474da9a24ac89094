import FlowTransport
import FlowCore
import Foundation

/// Inspect, replay, purge, export and import the dead-letter queue.
///
/// AMQP cannot peek, so every operation holds the messages instead: it consumes all of
/// them without acknowledging, acts on the selected ones, and when it ends (or the process
/// dies) the broker returns every message it did not remove to the queue. A replayed
/// message is removed only after its copy is confirmed in the target queue, so killing the
/// tool at any instant loses nothing; at worst a message is in both places, and the
/// workers' idempotency absorbs the duplicate.
public struct DeadLetterQueue: Sendable {
    public let transport: any MessageTransport
    public let names: TopologyNames
    public let audit: AuditLog?

    public init(transport: any MessageTransport, names: TopologyNames = TopologyNames(), audit: AuditLog?) {
        self.transport = transport
        self.names = names
        self.audit = audit
    }

    public var queueName: String { names.deadLetterQueue }

    /// Holds every message now in the queue while `body` runs; what `body` does not remove
    /// returns to the queue afterwards, in its order.
    public func withHeldMessages<Result: Sendable>(_ body: ([DeadLetter]) async throws -> Result) async throws -> Result {
        var expected = try await transport.inspectQueue(queueName).messageCount
        guard expected > 0 else { return try await body([]) }
        // A prefetch of 0 would mean no limit, but a quorum queue then gives a consumer at most
        // 2,000 messages at once: ask for them all (up to what AMQP can say), with room for
        // messages the count did not show yet.
        let consumer = try await transport.consume(queue: queueName, prefetch: UInt16(clamping: expected + 1000))
        let box = HeldMessages()
        let reader = Task {
            for try await delivery in consumer { await box.add(DeadLetter(delivery)) }
        }
        // Everything counted should arrive quickly. A quorum queue's count can lag behind its
        // log, so once the count is held, hold on while the queue still shows ready
        // messages; and stop waiting when nothing came for a while.
        var lastCount = -1
        var idleSince = ContinuousClock.now
        while true {
            let count = await box.count
            if count >= expected {
                let ready = try await transport.inspectQueue(queueName).messageCount
                if ready == 0 { break }
                expected = count + ready
            }
            if count != lastCount {
                lastCount = count
                idleSince = .now
            } else if ContinuousClock.now - idleSince > .seconds(5) {
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let letters = await box.all
        do {
            let result = try await body(letters)
            try await release(consumer, reader: reader)
            return result
        } catch {
            try? await release(consumer, reader: reader)
            throw error
        }
    }

    /// Ends the hold and waits until the broker took back what was not removed (the
    /// queue then shows no consumer), so the next operation sees every message.
    private func release(_ consumer: AMQPConsumer, reader: Task<Void, any Error>) async throws {
        consumer.cancel()
        reader.cancel()
        let deadline = ContinuousClock.now + .seconds(10)
        while try await transport.inspectQueue(queueName).consumerCount > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The messages that match, leaving every message where it is.
    public func list(_ filter: DeadLetterFilter) async throws -> [DeadLetterSummary] {
        try await withHeldMessages { letters in letters.filter { filter.matches($0) }.map(DeadLetterSummary.init) }
    }

    /// What a replay did.
    public struct ReplayReport: Sendable {
        public var replayed: [(id: String, queue: String)] = []
        public var refused: [(id: String, reason: String)] = []
        public var dryRun = false
    }

    /// Sends the selected messages back to the queue each died in (or `targetQueue`).
    public func replay(
        _ filter: DeadLetterFilter, limit: Int? = nil, targetQueue: String? = nil, ratePerSecond: Double? = nil,
        maximumReplays: Int = 5, force: Bool = false, dryRun: Bool = false, operatorName: String
    ) async throws -> ReplayReport {
        try await withHeldMessages { letters in
            var report = ReplayReport()
            report.dryRun = dryRun
            var selected = letters.filter { filter.matches($0) }
            if let limit { selected = Array(selected.prefix(limit)) }
            for letter in selected {
                guard force || letter.replayCount < maximumReplays else {
                    report.refused.append((letter.displayID, "replayed \(letter.replayCount) times already (the limit is \(maximumReplays)): it may be a poison message; use --force to replay it anyway"))
                    continue
                }
                guard let queue = targetQueue ?? letter.originalQueue else {
                    report.refused.append((letter.displayID, "it does not say which queue it died in: give --to-queue"))
                    continue
                }
                if dryRun {
                    report.replayed.append((letter.displayID, queue))
                    continue
                }
                var properties = letter.delivery.properties
                var headers = properties.headers ?? [:]
                headers[FlowProtocol.Header.replayCount] = .int(Int64(letter.replayCount + 1))
                headers[FlowProtocol.Header.attempt] = .int(1)
                for stale in [
                    FlowProtocol.Header.failureReason, FlowProtocol.Header.errorType, FlowProtocol.Header.deadLetteredFrom,
                    FlowProtocol.Header.deadLetteredBy, FlowProtocol.Header.deadLetteredAt, FlowProtocol.Header.lastError,
                    Topology.retryDelayHeader, FlowProtocol.Header.deadline,
                ] {
                    headers[stale] = nil
                }
                properties.headers = headers
                properties.expiration = nil
                do {
                    try await transport.publish(AMQPMessage(routingKey: queue, properties: properties, body: letter.delivery.body))
                } catch let error as AMQPError where error.code == .unroutable {
                    report.refused.append((letter.displayID, "queue '\(queue)' does not exist"))
                    continue
                }
                try await letter.delivery.ack()
                try audit?.record(action: "replay", operatorName: operatorName, messageID: letter.displayID, destination: queue)
                report.replayed.append((letter.displayID, queue))
                if let ratePerSecond, ratePerSecond > 0 {
                    try await Task.sleep(for: .milliseconds(Int64(1000 / ratePerSecond)))
                }
            }
            return report
        }
    }

    /// Removes the selected messages for good; returns their ids.
    public func purge(_ filter: DeadLetterFilter, operatorName: String) async throws -> [String] {
        try await withHeldMessages { letters in
            var purged: [String] = []
            for letter in letters where filter.matches(letter) {
                try await letter.delivery.ack()
                try audit?.record(action: "purge", operatorName: operatorName, messageID: letter.displayID, destination: nil)
                purged.append(letter.displayID)
            }
            return purged
        }
    }

    /// Writes the selected messages as JSON lines, leaving them in the queue.
    public func export(_ filter: DeadLetterFilter, to file: URL) async throws -> Int {
        try await withHeldMessages { letters in
            var lines = ""
            var count = 0
            for letter in letters where filter.matches(letter) {
                lines += try ExportedMessage(letter.delivery).jsonLine() + "\n"
                count += 1
            }
            try lines.write(to: file, atomically: true, encoding: .utf8)
            return count
        }
    }

    /// Publishes the messages of an export file into the dead-letter queue.
    public func importMessages(from file: URL, operatorName: String) async throws -> Int {
        let text = try String(contentsOf: file, encoding: .utf8)
        var count = 0
        for (number, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let message: ExportedMessage
            do {
                message = try FlowJSON.decode(ExportedMessage.self, from: String(line))
            } catch {
                throw DeadLetterError("line \(number + 1) of \(file.path) is not an exported message: \(error)")
            }
            try await transport.publish(AMQPMessage(routingKey: queueName, properties: message.amqpProperties, body: message.bodyBytes))
            try audit?.record(action: "import", operatorName: operatorName, messageID: message.messageID ?? "line \(number + 1)", destination: queueName)
            count += 1
        }
        return count
    }
}

/// A dead-letter operation that cannot proceed, with what to do.
public struct DeadLetterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

actor HeldMessages {
    private(set) var all: [DeadLetter] = []
    var count: Int { all.count }
    func add(_ letter: DeadLetter) { all.append(letter) }
}

/// One line of `flow dlq list`.
public struct DeadLetterSummary: Codable, Sendable, Equatable {
    public var id: String
    public var deadLetteredAt: Date?
    public var queue: String?
    public var activity: String?
    public var reason: String
    public var errorType: String?
    public var error: String?
    public var attempts: Int?
    public var replays: Int
    public var workflowID: String?

    public init(_ letter: DeadLetter) {
        id = letter.displayID
        deadLetteredAt = letter.deadLetteredAt
        queue = letter.originalQueue
        activity = letter.activity
        reason = letter.reason
        errorType = letter.errorType
        error = letter.errorMessage
        attempts = letter.attempts
        replays = letter.replayCount
        workflowID = letter.workflowID
    }
}
