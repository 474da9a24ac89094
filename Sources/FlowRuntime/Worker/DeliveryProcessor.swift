import FlowCore
import FlowObservability
import FlowTransport
import Foundation
import Logging
import Tracing

/// Takes one delivery from "received" to "acknowledged", through exactly one of: answered
/// from the store, completed, parked for a retry, or dead-lettered with its reason.
///
/// The order of steps is the safety argument: the reply (and any retry or dead-letter
/// copy) is confirmed by the broker before the delivery is acknowledged, so a crash at any
/// point repeats a step and never loses one.
struct DeliveryProcessor: Sendable {
    let configuration: WorkerConfiguration
    let registry: ActivityRegistry
    let transport: any MessageTransport
    let store: any ActivityStore
    let statistics: WorkerStatistics
    let logger: Logger
    let shutdownSignal: ShutdownSignal
    /// Cancel requests for activities running here, or not started yet.
    let cancels: ActivityCancels
    let runningMessages = RunningMessages()

    private var queueName: String { configuration.names.queue(configuration.queue) }

    /// Handles a delivery. When the worker is shutting down, or the broker cannot take the
    /// outcome, the delivery goes back to the queue for another attempt.
    func process(_ delivery: AMQPDelivery) async {
        do {
            try await handle(delivery)
        } catch is CancellationError {
            logger.info("activity interrupted by shutdown; returning its message to the queue", metadata: ["message.id": "\(delivery.properties.messageID ?? "")"])
            try? await delivery.nack(requeue: true)
        } catch let error as AMQPError where error.code == .staleDelivery {
            logger.warning("the broker connection dropped during the activity; the broker redelivers the message", metadata: ["message.id": "\(delivery.properties.messageID ?? "")"])
        } catch {
            logger.error("could not record the outcome of a delivery; returning it to the queue", metadata: ["error": "\(error)"])
            try? await delivery.nack(requeue: true)
        }
    }

    private func handle(_ delivery: AMQPDelivery) async throws {
        let request: ActivityRequest
        switch ActivityRequest.parse(delivery) {
        case .failure(let rejection):
            statistics.record(.deadLettered, activity: rejection.activity, errorType: rejection.kind.rawValue)
            let failure = ActivityFailure.nonRetryable(rejection.kind, rejection.message)
            try await deadLetter(delivery, failure: failure, attempt: nil)
            // Not a request, but it still gets a failed reply when it says where replies go.
            if let replyTo = delivery.properties.replyTo, !replyTo.isEmpty {
                let messageID = delivery.properties.messageID ?? ""
                let reply = ActivityReply(status: .failed, activity: delivery.properties.type ?? "", messageID: messageID, attempt: 1, error: failure)
                try await publishReply(reply, replyTo: replyTo, correlationID: delivery.properties.correlationID ?? messageID, workflowID: nil)
            }
            try await delivery.ack()
            return
        case .success(let parsed):
            request = parsed
        }
        // The activity runs in a span that continues the sender's trace: the coordinator's
        // step, `flow activity`, or any client that set `traceparent`.
        try await withSpan("process \(request.activity)", context: MessageTracing.context(of: delivery.properties.headers), ofKind: .consumer) { span in
            span.setMessagingAttributes(operation: "process", destination: queueName, messageID: request.messageID)
            span.updateAttributes { attributes in
                attributes[FlowSpanAttribute.conversationID] = request.correlationID
                attributes[FlowSpanAttribute.activity] = request.activity
                attributes[FlowSpanAttribute.attempt] = request.attempt
                if let workflowID = request.workflowID { attributes[FlowSpanAttribute.workflowID] = workflowID }
            }
            if let replays = delivery.properties.headers?[FlowProtocol.Header.replayCount]?.integerValue, replays > 0 {
                span.addEvent(SpanEvent(name: "replayed from the dead-letter queue", attributes: ["flow.replay_count": .int64(replays)]))
            }
            try await handle(request, of: delivery, span: span)
        }
    }

    private func handle(_ request: ActivityRequest, of delivery: AMQPDelivery, span: any Span) async throws {
        var requestLogger = logger
        requestLogger[metadataKey: "activity.name"] = "\(request.activity)"
        requestLogger[metadataKey: "message.id"] = "\(request.messageID)"
        requestLogger[metadataKey: "activity.attempt"] = "\(request.attempt)"
        if let workflowID = request.workflowID { requestLogger[metadataKey: "workflow.id"] = "\(workflowID)" }

        if await runningMessages.enter(request.messageID) {
            requestLogger.info("a copy of this message was running here; waited for it")
        }
        defer { runningMessages.leave(request.messageID) }
        if let stored = try await store.completedReply(messageID: request.messageID) {
            requestLogger.info("duplicate of a completed activity; answering from the store")
            statistics.record(.duplicate, activity: request.activity)
            span.attributes[FlowSpanAttribute.outcome] = "duplicate"
            try await sendReply(stored, for: request)
            try await delivery.ack()
            return
        }

        guard let entry = registry.entry(named: request.activity) else {
            let known = registry.names.joined(separator: ", ")
            let failure = ActivityFailure.nonRetryable(
                .unknownActivity,
                "no activity named '\(request.activity)' runs on \(queueName) (this worker runs: \(known.isEmpty ? "none yet" : known)); check the name and the queue in docs/protocol.md"
            )
            try await fail(delivery, request: request, failure: failure, policy: RetryPolicy(), logger: requestLogger, span: span)
            return
        }
        if let deadline = request.deadline, deadline < Date() {
            let failure = ActivityFailure.nonRetryable(.deadlineExceeded, "the request's deadline (\(deadline)) passed before a worker could start it")
            try await fail(delivery, request: request, failure: failure, policy: request.retryPolicy?.applied(to: entry.retryPolicy) ?? entry.retryPolicy, logger: requestLogger, span: span)
            return
        }

        statistics.record(.started, activity: request.activity)
        let started = ContinuousClock.now
        let outcome: Outcome
        if let reason = cancels.noted(request.messageID) {
            // Cancelled while it waited in its queue: answered without running.
            outcome = .failure(.cancelled("cancelled on request before it started: \(reason)"))
        } else {
            outcome = try await run(entry, request: request, logger: requestLogger)
        }
        switch outcome {
        case .success(let output):
            let reply = ActivityReply(status: .completed, activity: request.activity, messageID: request.messageID, attempt: Int64(request.attempt), output: output)
            // Both must be done before the ack; neither needs the other first. A crash after
            // the reply but before the store write re-runs the activity on redelivery, exactly
            // as a crash just before either would. A reply the broker refuses must not cancel
            // the store write: the redelivery is then answered from the store, not run again.
            async let stored: Void = store.recordCompletion(reply)
            do {
                try await sendReply(reply, for: request)
            } catch {
                try? await stored
                throw error
            }
            try await stored
            // Replied and stored, the activity has completed, once: an ack lost with the
            // connection brings a redelivery that the store answers as a duplicate.
            statistics.record(.completed, activity: request.activity, duration: ContinuousClock.now - started)
            span.attributes[FlowSpanAttribute.outcome] = "completed"
            requestLogger.info("activity completed", metadata: ["duration": "\(ContinuousClock.now - started)"])
            try await delivery.ack()
        case .failure(let failure) where failure.isCancellation:
            // Cancelled on request: answered, and neither retried nor dead-lettered.
            let reply = ActivityReply(status: .failed, activity: request.activity, messageID: request.messageID, attempt: Int64(request.attempt), error: failure)
            try await sendReply(reply, for: request)
            try await delivery.ack()
            statistics.record(.cancelled, activity: request.activity, duration: ContinuousClock.now - started)
            span.attributes[FlowSpanAttribute.outcome] = "cancelled"
            requestLogger.info("activity cancelled on request", metadata: ["reason": "\(failure.message)"])
        case .failure(let failure):
            try await fail(
                delivery, request: request, failure: failure, policy: request.retryPolicy?.applied(to: entry.retryPolicy) ?? entry.retryPolicy, logger: requestLogger,
                span: span, ran: ContinuousClock.now - started
            )
        case .deferred(let deferral):
            span.attributes[FlowSpanAttribute.outcome] = "deferred"
            span.addEvent(SpanEvent(name: "handed back to the queue", attributes: ["flow.deferral.reason": .string(deferral.reason)]))
            try await handBack(delivery, request: request, deferral: deferral, logger: requestLogger, ran: ContinuousClock.now - started)
        }
    }

    enum Outcome: Sendable {
        case success(JSONText)
        case failure(ActivityFailure)
        case deferred(ActivityDeferral)
    }

    /// Hands the work to a fresh delivery, under the same message id and attempt: at once,
    /// or through the shortest retry delay tier that waits at least the deferral's delay.
    private func handBack(_ delivery: AMQPDelivery, request: ActivityRequest, deferral: ActivityDeferral, logger: Logger, ran: Duration) async throws {
        var headers = delivery.properties.headers ?? [:]
        let deferrals = (headers[FlowProtocol.Header.deferrals]?.integerValue ?? 0) + 1
        headers[FlowProtocol.Header.deferrals] = .int(deferrals)
        try await republish(delivery, headers: headers, through: Topology.retryDelayTier(atLeast: deferral.delay))
        statistics.record(.deferred, activity: request.activity, duration: ran)
        logger.info("activity handed its message back to the queue", metadata: ["reason": "\(deferral.reason)", "delay": "\(deferral.delay)", "deferrals": "\(deferrals)"])
    }

    /// Publishes a copy of the delivery with `headers` back to its queue, through the retry
    /// delay tier `tier` when there is one (the broker keeps the wait), and only once the
    /// broker confirmed the copy acknowledges the delivery: the message is never lost.
    private func republish(_ delivery: AMQPDelivery, headers: FieldTable, through tier: RetryDelayTier?) async throws {
        var properties = delivery.properties
        var headers = headers
        headers[Topology.retryDelayHeader] = tier.map { .string($0.label) }
        MessageTracing.continueTrace(in: &headers)
        properties.headers = headers
        properties.expiration = nil
        let exchange = tier == nil ? "" : configuration.names.retryExchange
        try await publishHoldingDelivery(AMQPMessage(exchange: exchange, routingKey: queueName, properties: properties, body: delivery.body), what: "retry copy")
        try await delivery.ack()
    }

    /// Runs the activity under its start-to-close timeout. Cancellation from outside (a
    /// shutdown past its grace period) propagates as `CancellationError`.
    private func run(_ entry: ActivityRegistry.Entry, request: ActivityRequest, logger: Logger) async throws -> Outcome {
        let attemptTimeout = request.startToCloseTimeout ?? entry.startToCloseTimeout
        let timeout: Duration
        if let deadline = request.deadline {
            let remaining = Duration.milliseconds(Int64(deadline.timeIntervalSinceNow * 1000))
            timeout = min(attemptTimeout, max(remaining, .zero))
        } else {
            timeout = attemptTimeout
        }
        let lastHeartbeat: JSONText?
        if let carried = request.lastHeartbeat {
            lastHeartbeat = carried
        } else {
            lastHeartbeat = try? await store.lastHeartbeat(messageID: request.messageID)
        }
        let context = ActivityContext(
            messageID: request.messageID,
            activity: request.activity,
            attempt: request.attempt,
            deadline: ContinuousClock.now + timeout,
            workflowID: request.workflowID,
            lastHeartbeatDetails: lastHeartbeat,
            logger: logger,
            priority: request.priority,
            rateKey: request.rateKey,
            shutdownSignal: shutdownSignal,
            progressReporter: { details in
                try? await store.recordHeartbeat(messageID: request.messageID, details: details)
                let progress = ActivityReply(status: .progress, activity: request.activity, messageID: request.messageID, attempt: Int64(request.attempt), progress: details)
                try? await sendReply(progress, for: request)
            }
        )

        enum Race: Sendable {
            case finished(Outcome)
            case timedOut
            case cancelled(reason: String)
        }
        // A cancel request ends the race as a timeout does: the activity's task is
        // cancelled, and the group waits for it to stop (training saves a checkpoint first).
        let cancelRequests = cancels.watch(request.messageID)
        defer { cancelRequests.end() }
        return try await withThrowingTaskGroup(of: Race.self) { group in
            group.addTask {
                do {
                    return .finished(.success(try await entry.run(request.body, context)))
                } catch let failure as ActivityFailure {
                    return .finished(.failure(failure))
                } catch let deferral as ActivityDeferral {
                    return .finished(.deferred(deferral))
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    // An error outside the catalogue goes by its Swift type's name, retryable:
                    // the handler did not say that another attempt cannot help.
                    return .finished(.failure(.retryable(ActivityFailure.Kind(rawValue: String(describing: type(of: error))), "\(error)")))
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return .timedOut
            }
            group.addTask {
                for await reason in cancelRequests.requests { return .cancelled(reason: reason) }
                throw CancellationError()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            switch first {
            case .finished(let result):
                return result
            case .timedOut:
                return .failure(.retryable(.startToCloseTimeout, "the activity did not finish within \(timeout) and was cancelled"))
            case .cancelled(let reason):
                return .failure(.cancelled("cancelled on request: \(reason)"))
            }
        }
    }

    /// A failed attempt: parked for a retry when the policy allows, otherwise answered as
    /// failed and dead-lettered with its reason.
    private func fail(_ delivery: AMQPDelivery, request: ActivityRequest, failure: ActivityFailure, policy: RetryPolicy, logger: Logger, span: any Span, ran: Duration? = nil) async throws {
        span.attributes[FlowSpanAttribute.errorType] = failure.type
        span.setStatus(SpanStatus(code: .error, message: failure.message))
        if policy.shouldRetry(failure, afterAttempt: request.attempt) {
            let tier = policy.delayTier(afterAttempt: request.attempt)
            var headers = delivery.properties.headers ?? [:]
            headers[FlowProtocol.Header.attempt] = .int(Int64(request.attempt + 1))
            headers[FlowProtocol.Header.lastError] = .string(failure.description)
            if let heartbeat = try? await store.lastHeartbeat(messageID: request.messageID) {
                headers[FlowProtocol.Header.lastHeartbeat] = .string(heartbeat.text)
            }
            try await republish(delivery, headers: headers, through: tier)
            statistics.record(.retried, activity: request.activity, duration: ran, errorType: failure.type)
            span.attributes[FlowSpanAttribute.outcome] = "retried"
            span.addEvent(SpanEvent(name: "retry scheduled", attributes: ["flow.retry.delay": .string(tier.label), "flow.retry.attempt": .int64(Int64(request.attempt + 1))]))
            logger.warning("activity failed; retrying", metadata: ["error": "\(failure)", "retry.delay": "\(tier.label)", "retry.attempt": "\(request.attempt + 1)"])
            return
        }
        let reason: ActivityFailure
        if failure.retryable {
            reason = ActivityFailure(kind: failure.kind, message: "gave up after \(request.attempt) attempts; last error: \(failure.message)", retryable: false)
        } else {
            reason = failure
        }
        let reply = ActivityReply(status: .failed, activity: request.activity, messageID: request.messageID, attempt: Int64(request.attempt), error: .init(type: reason.type, message: reason.message, retryable: false))
        // Dead-lettered before the reply: whoever the reply tells to replay the message
        // (an operator, a parked workflow's starter) finds it in the dead-letter queue.
        try await deadLetter(delivery, failure: reason, attempt: request.attempt)
        try await sendReply(reply, for: request)
        try await delivery.ack()
        statistics.record(.failed, activity: request.activity, duration: ran)
        statistics.record(.deadLettered, activity: request.activity, errorType: reason.type)
        span.attributes[FlowSpanAttribute.outcome] = "dead_lettered"
        span.addEvent(SpanEvent(name: "dead-lettered", attributes: ["flow.dead_letter.reason": .string(reason.message)]))
        logger.error("activity failed for good; dead-lettered", metadata: ["error": "\(reason)"])
    }

    /// Dead-letters the delivery with its reason (the caller acknowledges it afterwards).
    private func deadLetter(_ delivery: AMQPDelivery, failure: ActivityFailure, attempt: Int?) async throws {
        let publisher = DeadLetterPublisher(
            transport: transport, exchange: configuration.names.deadLetterExchange, queueName: queueName, publisherID: configuration.workerID,
            refusedPublishBackoff: configuration.refusedPublishBackoff,
            onRefusal: logger.refusedPublishes(of: "dead-letter copy", messageID: delivery.properties.messageID ?? "")
        )
        try await publisher.deadLetter(delivery, failure: failure, attempt: attempt)
        logger.error("message dead-lettered", metadata: ["error.type": "\(failure.type)", "reason": "\(failure.message)", "message.id": "\(delivery.properties.messageID ?? "")"])
    }

    private func sendReply(_ reply: ActivityReply, for request: ActivityRequest) async throws {
        guard let replyTo = request.replyTo else { return }
        try await publishReply(reply, replyTo: replyTo, correlationID: request.correlationID, workflowID: request.workflowID)
    }

    private func publishReply(_ reply: ActivityReply, replyTo: String, correlationID: String, workflowID: String?) async throws {
        var headers: FieldTable = [
            FlowProtocol.Header.protocolVersion: .int(FlowProtocol.version),
            FlowProtocol.Header.activity: .string(reply.activity),
            FlowProtocol.Header.attempt: .int(reply.attempt),
            FlowProtocol.Header.sentAt: .int(Int64(Date().timeIntervalSince1970 * 1000)),
        ]
        if let workflowID { headers[FlowProtocol.Header.workflowID] = .string(workflowID) }
        let type: String
        switch reply.status {
        case .completed: type = FlowProtocol.ReplyType.completed
        case .failed: type = FlowProtocol.ReplyType.failed
        case .progress: type = FlowProtocol.ReplyType.progress
        }
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: headers, deliveryMode: 2, correlationID: correlationID,
            messageID: "\(reply.messageID)#\(reply.status.rawValue)", timestamp: UInt64(Date().timeIntervalSince1970), type: type,
            appID: "antifragileflow"
        )
        let body = try FlowJSON.encodeBytes(reply)
        do {
            try await publishHoldingDelivery(AMQPMessage(routingKey: replyTo, properties: properties, body: body), what: "reply")
        } catch let error as AMQPError where error.code == .unroutable {
            // The requester's reply queue is gone (an exclusive queue of a client that left):
            // nobody can read the reply, and holding the request would not change that.
            logger.warning("reply queue does not exist; reply dropped", metadata: ["reply.to": "\(replyTo)", "message.id": "\(reply.messageID)"])
        }
    }

    /// Publishes what a delivery waits on, again and again while the broker refuses it; the
    /// delivery stays unacknowledged meanwhile and is not redelivered, so the refusals do
    /// not use up its queue's delivery limit.
    private func publishHoldingDelivery(_ message: AMQPMessage, what: String) async throws {
        try await transport.publishUntilTaken(
            message, backoff: configuration.refusedPublishBackoff, onRefusal: logger.refusedPublishes(of: what, messageID: message.properties.messageID ?? "")
        )
    }
}
