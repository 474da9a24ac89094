import FlowCore
import FlowObservability
import FlowTransport
import Foundation
import ServiceContextModule

extension WorkflowCoordinator {
    /// Sends a finished workflow's result to its recipients, forgetting each once sent.
    func deliverResult(_ record: WorkflowRecord, to recipients: [ResultRecipient]) async throws {
        for recipient in recipients {
            do {
                try await transport.publish(try CoordinatorMessages.result(record, to: recipient, at: now))
            } catch let error as AMQPError where error.code == .unroutable {
                logger.warning("a workflow's reply queue does not exist; result not sent", metadata: ["workflow.id": "\(record.id)", "reply.to": "\(recipient.replyTo)"])
            }
            try await store.removeRecipient(workflowID: record.id, recipient)
        }
    }

    /// Sends the results that a crash kept from their recipients.
    func deliverPendingResults() async throws {
        for record in try await store.finishedWithRecipients() {
            try await deliverResult(record, to: try await store.recipients(workflowID: record.id))
        }
    }

    /// Tells a parked workflow's recipients that it waits, and what ends the wait. They
    /// stay recipients: the final result follows once it ends.
    func announceParked(workflowID: String, activity: String, messageID: String, failure: ActivityFailure) async throws {
        guard let record = try await store.workflow(id: workflowID) else { return }
        let advice = ActivityFailure.nonRetryable(
            failure.kind,
            "\(activity) failed for good: \(failure.message). Its message \(messageID) is in the dead-letter queue; fix the cause, then "
                + "`flow dlq replay --message-id \(messageID)` continues the workflow (or `flow workflow cancel \(workflowID)` ends it)"
        )
        let notice = WorkflowResult(status: .parked, workflow: record.name, workflowID: record.id, error: advice)
        for recipient in try await store.recipients(workflowID: record.id) {
            try await publishAnswer(notice, type: WorkflowResult.messageType, to: recipient)
        }
    }

    /// Publishes an answer (a command's, or a notice about a workflow) to whoever asked.
    func publishAnswer<Body: Encodable>(_ body: Body, type: String, to recipient: ResultRecipient) async throws {
        do {
            try await transport.publish(try CoordinatorMessages.answer(body, type: type, to: recipient, at: now))
        } catch let error as AMQPError where error.code == .unroutable {
            logger.warning("a command's reply queue does not exist; answer not sent", metadata: ["reply.to": "\(recipient.replyTo)"])
        }
    }
}

/// Every message the coordinator publishes, built in one place: activity requests,
/// workflow results and answers to commands (docs/protocol.md).
enum CoordinatorMessages {
    static let appID = "antifragileflow"

    /// The request of one step, under its message id (the idempotency key of every send).
    /// `trace` is the step's span, for the worker's span to continue.
    /// `carried`: for a step sent again under a new message id after an unpause, the
    /// attempt it goes on from and the details its last attempt reported.
    static func request(
        messageID: String, workflowID: String, call: ActivityCall, names: TopologyNames, trace: ServiceContext, at now: Date, carried: CarriedAttempt? = nil
    ) throws -> AMQPMessage {
        var headers: FieldTable = [
            FlowProtocol.Header.protocolVersion: .int(FlowProtocol.version),
            FlowProtocol.Header.workflowID: .string(workflowID),
            FlowProtocol.Header.sentAt: .int(Int64(now.timeIntervalSince1970 * 1000)),
        ]
        if let carried {
            headers[FlowProtocol.Header.attempt] = .int(Int64(carried.attempt))
            if let details = carried.heartbeat { headers[FlowProtocol.Header.lastHeartbeat] = .string(details.text) }
        }
        MessageTracing.inject(trace, into: &headers)
        if let timeout = call.options.startToCloseTimeout {
            headers[FlowProtocol.Header.startToCloseTimeout] = .int(timeout.wholeMilliseconds)
        }
        if let policy = call.options.retryPolicy {
            headers[FlowProtocol.Header.retryPolicy] = .string(try FlowJSON.encodeText(policy.wireForm))
        }
        if let scheduleToClose = call.options.scheduleToCloseTimeout {
            headers[FlowProtocol.Header.deadline] = .int(Int64(now.timeIntervalSince1970 * 1000) + scheduleToClose.wholeMilliseconds)
        }
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: headers, deliveryMode: 2, correlationID: messageID,
            replyTo: names.coordinatorReplyQueue, messageID: messageID, timestamp: UInt64(now.timeIntervalSince1970),
            type: call.activity, appID: appID
        )
        return AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(call.queue), properties: properties, body: Array(call.input.text.utf8))
    }

    /// A finished workflow's result, for one recipient.
    static func result(_ record: WorkflowRecord, to recipient: ResultRecipient, at now: Date) throws -> AMQPMessage {
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: [FlowProtocol.Header.workflowID: .string(record.id)], deliveryMode: 2,
            correlationID: recipient.correlationID, messageID: "\(record.id)#result", timestamp: UInt64(now.timeIntervalSince1970),
            type: WorkflowResult.messageType, appID: appID
        )
        return AMQPMessage(routingKey: recipient.replyTo, properties: properties, body: try FlowJSON.encodeBytes(record.result))
    }

    /// An answer to whoever sent a command, or a notice about their workflow.
    static func answer<Body: Encodable>(_ body: Body, type: String, to recipient: ResultRecipient, at now: Date) throws -> AMQPMessage {
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: recipient.correlationID,
            timestamp: UInt64(now.timeIntervalSince1970), type: type, appID: appID
        )
        return AMQPMessage(routingKey: recipient.replyTo, properties: properties, body: try FlowJSON.encodeBytes(body))
    }
}
