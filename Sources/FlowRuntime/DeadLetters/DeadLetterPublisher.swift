import FlowCore
import FlowObservability
import FlowTransport
import Foundation
import ServiceContextModule

/// Puts a delivery its consumer cannot handle into the dead-letter queue, with the reason
/// in headers a person (and `flow dlq`) can read. RabbitMQ's own dead-lettering can only
/// say "rejected", so consumers publish the copy themselves and then acknowledge.
public struct DeadLetterPublisher: Sendable {
    let transport: any MessageTransport
    let exchange: String
    /// The queue the delivery came from, where a replay sends it back.
    let queueName: String
    /// Who dead-lettered it: a worker or coordinator id.
    let publisherID: String
    /// The waits between publishes the broker refuses, while the delivery stays unacknowledged.
    let refusedPublishBackoff: Backoff
    let onRefusal: @Sendable (_ refusals: Int, _ wait: Duration, _ error: AMQPError) -> Void

    public init(
        transport: any MessageTransport, exchange: String, queueName: String, publisherID: String,
        refusedPublishBackoff: Backoff = .refusedPublish,
        onRefusal: @escaping @Sendable (_ refusals: Int, _ wait: Duration, _ error: AMQPError) -> Void = { _, _, _ in }
    ) {
        self.transport = transport
        self.exchange = exchange
        self.queueName = queueName
        self.publisherID = publisherID
        self.refusedPublishBackoff = refusedPublishBackoff
        self.onRefusal = onRefusal
    }

    /// Publishes the copy and returns once the broker confirmed it (publishing it again
    /// while the broker refuses it); acknowledge the delivery only after this returns.
    public func deadLetter(_ delivery: AMQPDelivery, failure: ActivityFailure, attempt: Int?) async throws {
        var properties = delivery.properties
        var headers = properties.headers ?? [:]
        headers[FlowProtocol.Header.failureReason] = .string(failure.message)
        headers[FlowProtocol.Header.errorType] = .string(failure.type)
        headers[FlowProtocol.Header.deadLetteredFrom] = .string(queueName)
        headers[FlowProtocol.Header.deadLetteredBy] = .string(publisherID)
        headers[FlowProtocol.Header.deadLetteredAt] = .int(Int64(Date().timeIntervalSince1970 * 1000))
        if headers[FlowProtocol.Header.attempt] == nil { headers[FlowProtocol.Header.attempt] = .int(Int64(attempt ?? 1)) }
        MessageTracing.continueTrace(in: &headers)
        properties.headers = headers
        properties.expiration = nil
        try await transport.publishUntilTaken(
            AMQPMessage(exchange: exchange, routingKey: queueName, properties: properties, body: delivery.body), backoff: refusedPublishBackoff, onRefusal: onRefusal
        )
    }
}
