import BenchmarkSupport
import FlowAMQP
import FlowContracts
import FlowCore
import Foundation

/// Analyses sent to an `openai-queue` through the broker, each awaited until its final
/// reply: how both parts of the benchmark feed the actor, as an operator's client would.
final class AnalysisChannel: Sendable {
    private let requester: AMQPConnection
    private let names: TopologyNames
    private let replyQueue: String
    private let replies: AMQPConsumer
    private let arrivals = Arrivals()
    private let failures = FailedCount()
    private let reader: Task<Void, any Error>

    init(requester: AMQPConnection, names: TopologyNames, prefetch: UInt16) async throws {
        self.requester = requester
        self.names = names
        replyQueue = "\(names.prefix!).replies"
        try await requester.declare(Topology(queues: [.init(name: replyQueue, durable: false, exclusive: true, autoDelete: true)]))
        let replies = try await requester.consume(queue: replyQueue, prefetch: prefetch)
        self.replies = replies
        let (arrivals, failures) = (arrivals, failures)
        reader = Task {
            for try await delivery in replies {
                try await delivery.ack()
                if delivery.properties.type == FlowProtocol.ReplyType.progress { continue }
                if delivery.properties.type == FlowProtocol.ReplyType.failed { await failures.add(String(decoding: delivery.body, as: UTF8.self)) }
                if let id = delivery.properties.correlationID { await arrivals.arrive(id) }
            }
        }
    }

    /// Publishes `analyze_document_content` of `text` under `id` and waits for its final reply.
    func analyse(id: String, documentIndex: Int, text: String) async throws {
        let input = try JSONText(encoding: AnalyzeDocumentContent.Input(documentID: "doc-\(documentIndex)", text: text, useCache: false))
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: id, replyTo: replyQueue, messageID: id, type: AnalyzeDocumentContent.name
        )
        try await requester.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(.openai), properties: properties, body: Array(input.text.utf8)))
        await arrivals.wait(for: id)
    }

    /// Stops reading replies, and says on standard error how many analyses failed, and the first reason.
    func close() async {
        reader.cancel()
        replies.cancel()
        if let first = await failures.first {
            FileHandle.standardError.write(Data("\(await failures.count) analyses failed; the first: \(first)\n".utf8))
        }
    }
}

actor FailedCount {
    private(set) var count = 0
    private(set) var first: String?

    func add(_ reason: String) {
        count += 1
        if first == nil { first = reason }
    }
}
