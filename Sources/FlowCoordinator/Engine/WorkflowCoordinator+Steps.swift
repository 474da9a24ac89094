import FlowCore
import FlowObservability
import FlowTransport
import Foundation
import Logging
import Synchronization
import Tracing

extension WorkflowCoordinator {
    /// Runs one step of a workflow: its recorded outcome when it has one, otherwise sends
    /// the request (unless it was sent before) and waits for the outcome.
    func executeStep(workflowID: String, stepKey: String, call: ActivityCall, logger: Logger) async throws -> JSONText {
        let messageID = "\(workflowID)/\(stepKey)"
        let step: StepRecord
        do {
            step = try await store.scheduleStep(
                StepRecord(
                    messageID: messageID, workflowID: workflowID, stepKey: stepKey, activity: call.activity,
                    queue: configuration.names.queue(call.queue), input: call.input, options: call.options, status: .scheduled,
                    sends: 0, scheduledAt: now, sentAt: nil, lastHeardAt: nil, attempt: 0, result: nil, error: nil
                )
            )
        } catch {
            throw CoordinatorUnavailable(message: "cannot record step \(stepKey): \(error)")
        }
        switch step.status {
        case .completed:
            statistics.record(.stepReplayed)
            return step.result ?? JSONText.null
        case .failed:
            statistics.record(.stepReplayed)
            throw ActivityError(activity: call.activity, failure: step.error ?? .nonRetryable(.unknown, "no error recorded"))
        case .scheduled, .parked:
            break
        }
        // The step's span is the parent of every worker attempt: the retries through the
        // delay tiers, re-sends, and a replay from the dead-letter queue.
        return try await withSpan("send \(call.activity)", ofKind: .producer) { span in
            span.setMessagingAttributes(operation: "send", destination: step.queue, messageID: messageID)
            span.updateAttributes { attributes in
                attributes[FlowSpanAttribute.activity] = call.activity
                attributes[FlowSpanAttribute.workflowID] = workflowID
                attributes[FlowSpanAttribute.stepKey] = stepKey
            }
            stepSpans[messageID] = span
            defer { stepSpans[messageID] = nil }
            // A parked step waits for an operator's replay, not for a deadline.
            let sentAt = step.status == .parked ? nil : step.sentAt
            machine.awaitStep(messageID, .init(workflowID: workflowID, call: call, sentAt: sentAt, lastHeardAt: step.lastHeardAt, sends: step.sends))
            if step.sentAt == nil {
                // A reply that comes before the send is recorded is kept for the wait below.
                try await send(messageID: messageID, workflowID: workflowID, call: call, resentBecause: nil)
            } else {
                span.addEvent(SpanEvent(name: step.status == .parked ? "waiting for a replay of the parked step" : "waiting for the reply to an earlier send", attributes: [
                    "flow.step.sends": .int64(Int64(step.sends)),
                ]))
            }
            let outcome = try await waitForOutcome(messageID: messageID)
            let took = now.timeIntervalSince(step.scheduledAt)
            switch outcome {
            case .completed(let output):
                span.attributes[FlowSpanAttribute.outcome] = "completed"
                statistics.stepEnded(activity: call.activity, outcome: "completed", after: took)
                return output
            case .failed(let failure):
                span.attributes[FlowSpanAttribute.outcome] = "failed"
                span.attributes[FlowSpanAttribute.errorType] = failure.type
                span.setStatus(SpanStatus(code: .error, message: failure.message))
                statistics.stepEnded(activity: call.activity, outcome: "failed", after: took)
                throw ActivityError(activity: call.activity, failure: failure)
            case .unavailable(let reason):
                throw CoordinatorUnavailable(message: reason)
            }
        }
    }

    /// Publishes a step's request (confirmed by the broker) and records that it was sent.
    func send(messageID: String, workflowID: String, call: ActivityCall, resentBecause reason: String?) async throws {
        let sentAt = now
        let queueName = configuration.names.queue(call.queue)
        do {
            let span = stepSpans[messageID]
            if let reason { span?.addEvent(SpanEvent(name: "re-sent", attributes: ["flow.resend.reason": .string(reason)])) }
            let message = try CoordinatorMessages.request(
                messageID: messageID, workflowID: workflowID, call: call, names: configuration.names,
                trace: span?.context ?? ServiceContext.current ?? .topLevel, at: sentAt
            )
            try await transport.publish(message)
            let step = try await store.markSent(messageID: messageID, at: sentAt, resentBecause: reason)
            machine.stepSent(messageID, at: sentAt, sends: step?.sends ?? 1)
        } catch {
            throw CoordinatorUnavailable(message: "cannot send \(call.activity) to \(queueName): \(error)")
        }
        statistics.record(reason == nil ? .stepSent : .stepResent)
    }

    private func waitForOutcome(messageID: String) async throws -> CoordinatorStateMachine.StepOutcome {
        let waiters = self.waiters
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CoordinatorStateMachine.StepOutcome, any Error>) in
                if let outcome = machine.beginWaiting(messageID) {
                    continuation.resume(returning: outcome)
                } else {
                    waiters.register(messageID, continuation)
                }
            }
        } onCancel: {
            waiters.cancel(messageID)
        }
    }

    /// Hands a recorded outcome to the workflow waiting for it, or keeps it for when it does.
    func resolve(messageID: String, workflowID: String, _ outcome: CoordinatorStateMachine.StepOutcome) {
        if case .resume(let outcome) = machine.outcome(messageID, workflowID: workflowID, outcome) {
            waiters.resume(messageID, with: outcome)
        }
    }

    // MARK: Timers

    func sleep(workflowID: String, timerKey: String, duration: Duration) async throws {
        let timer: (fireAt: Date, fired: Bool)
        do {
            timer = try await store.timer(workflowID: workflowID, key: timerKey, firesAfter: duration, at: now)
        } catch {
            throw CoordinatorUnavailable(message: "cannot record timer \(timerKey): \(error)")
        }
        if timer.fired { return }
        try await clock.sleep(until: WallInstant(timer.fireAt), tolerance: nil)
        do {
            try await store.markTimerFired(workflowID: workflowID, key: timerKey, at: now)
        } catch {
            throw CoordinatorUnavailable(message: "cannot record that timer \(timerKey) fired: \(error)")
        }
    }
}

/// The workflow code suspended on each step, by message id. A lock rather than actor
/// state, so that a cancelled task can stop waiting at once, from its cancellation handler.
final class StepWaiters: Sendable {
    typealias Waiter = CheckedContinuation<CoordinatorStateMachine.StepOutcome, any Error>
    private let waiting = Mutex<[String: Waiter]>([:])

    /// Registers a waiter; one whose task is already cancelled is ended at once (its
    /// cancellation handler may have run before there was anything to end).
    func register(_ messageID: String, _ waiter: Waiter) {
        waiting.withLock { $0[messageID] = waiter }
        if Task.isCancelled { cancel(messageID) }
    }

    func resume(_ messageID: String, with outcome: CoordinatorStateMachine.StepOutcome) {
        waiting.withLock { $0.removeValue(forKey: messageID) }?.resume(returning: outcome)
    }

    func cancel(_ messageID: String) {
        waiting.withLock { $0.removeValue(forKey: messageID) }?.resume(throwing: CancellationError())
    }

    func isWaiting(_ messageID: String) -> Bool {
        waiting.withLock { $0[messageID] != nil }
    }

    func cancelAll() {
        let all = waiting.withLock { waiting in
            defer { waiting.removeAll() }
            return Array(waiting.values)
        }
        for waiter in all { waiter.resume(throwing: CancellationError()) }
    }
}
