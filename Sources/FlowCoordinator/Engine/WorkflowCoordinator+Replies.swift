import FlowCore
import FlowTransport
import Foundation

extension WorkflowCoordinator {
    /// Records one reply from a worker and hands it to its workflow. Acknowledged only
    /// after it is recorded; one that cannot be recorded goes back to the queue.
    func handleReply(_ delivery: AMQPDelivery) async {
        observeLag(of: delivery, in: configuration.names.coordinatorReplyQueue)
        do {
            guard let reply = try? FlowJSON.decode(ActivityReply.self, from: delivery.body) else {
                try await reject(delivery, from: configuration.names.coordinatorReplyQueue, failure: .nonRetryable(.malformedReply, "the message on the coordinator's reply queue is not an activity reply (docs/protocol.md, Replies)"))
                try await delivery.ack()
                return
            }
            let messageID = delivery.properties.correlationID ?? reply.messageID
            try await record(reply, messageID: messageID)
            try await delivery.ack()
            machine.handlingSucceeded()
        } catch let error as AMQPError where error.code == .staleDelivery {
            logger.warning("the broker connection dropped while handling a reply; it is redelivered")
        } catch {
            await returnToQueue(delivery, after: error, what: "a reply")
        }
    }

    /// Records how long `delivery` waited in `queue`: from its `flow-sent-at-ms` header,
    /// or its AMQP timestamp (whole seconds) when the sender set no header.
    func observeLag(of delivery: AMQPDelivery, in queue: String) {
        let sentAt: Date
        if let milliseconds = delivery.properties.headers?[FlowProtocol.Header.sentAt]?.integerValue {
            sentAt = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        } else if let seconds = delivery.properties.timestamp, seconds > 0 {
            sentAt = Date(timeIntervalSince1970: Double(seconds))
        } else {
            return
        }
        statistics.queueLag(queue, seconds: now.timeIntervalSince(sentAt))
    }

    private func record(_ reply: ActivityReply, messageID: String) async throws {
        let attempt = Int(reply.attempt)
        let result: StepResult
        switch reply.status {
        case .progress:
            try await store.note(.heard(messageID: messageID, attempt: attempt, details: reply.progress), at: now)
            machine.heard(messageID, at: now)
            return
        case .completed:
            result = .completed(attempt: attempt, output: reply.output ?? .null)
        case .failed:
            result = .failed(attempt: attempt, failure: reply.error ?? .nonRetryable(.unknown, "the worker sent no error"))
        }
        count(try await deliverOutcome(result, messageID: messageID), messageID: messageID)
    }

    private func count(_ change: StepChange, messageID: String) {
        switch change {
        case .recorded:
            break
        case .alreadyFinal:
            statistics.record(.duplicateReply)
        case .unknown:
            statistics.record(.staleReply)
            logger.warning("reply for no step of a running workflow (unknown id, or its workflow ended); dropped", metadata: ["correlation.id": "\(messageID)"])
        }
    }

    /// Puts back a reply or command that could not be recorded, after a wait that grows
    /// while such failures follow each other.
    func returnToQueue(_ delivery: AMQPDelivery, after error: any Error, what: String) async {
        let wait = machine.handlingFailed(random: Double.random(in: 0..<1))
        logger.error("could not handle \(what); returning it to the queue", metadata: ["error": "\(error)", "wait": "\(wait)"])
        try? await clock.sleep(until: clock.now.advanced(by: wait), tolerance: nil)
        try? await delivery.nack(requeue: true)
    }
}
