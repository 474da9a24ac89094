import FlowCore
import FlowObservability
import FlowTransport
import Foundation
import Logging
import Tracing

extension WorkflowCoordinator {
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

    /// Records a step's final outcome and, when its workflow runs here (`owner`, `run`),
    /// resumes the code waiting on it. Called by the workflow's driver, so that outcomes
    /// reach the code in the order they are recorded; without a run (its workflow ended, or
    /// waits for a relaunch) the outcome is only recorded, and a relaunch replays it.
    func recordOutcome(_ result: StepResult, messageID: String, owner: StepOwner?, run: WorkflowRun?) async throws -> StepChange {
        let change = try await recordOutcomeOnly(result, messageID: messageID, owner: owner, run: run)
        // Recorded before, by a reply handled while this run was not launched yet: the code
        // waits for it all the same.
        if case .alreadyFinal = change, owner != nil, let run, let step = try await store.step(messageID: messageID) {
            resumeFromRecord(step, run: run)
        }
        return change
    }

    private func recordOutcomeOnly(_ result: StepResult, messageID: String, owner: StepOwner?, run: WorkflowRun?) async throws -> StepChange {
        switch result {
        case .completed(let attempt, let output):
            let change = try await store.completeStep(messageID: messageID, attempt: attempt, output: output, at: now)
            if case .recorded(let step, let unparked) = change {
                statistics.record(.stepCompleted)
                if unparked { logger.info("a replayed step completed; workflow unparked", metadata: ["workflow.id": "\(step.workflowID)", "message.id": "\(messageID)"]) }
                if let owner, let run {
                    endStep(messageID, owner: owner, outcome: "completed", failure: nil)
                    run.resolve(owner.position, .success(output))
                }
            }
            return change
        case .failed(let attempt, let failure):
            let options: ActivityOptions? = if let owner { owner.call.options } else { try await store.step(messageID: messageID)?.options }
            // A cancelled activity was not dead-lettered: there is nothing to replay, so the
            // workflow sees the failure instead of parking.
            let parks = options?.onFinalFailure != .throw && !failure.isCancellation
            let change = try await store.failStep(messageID: messageID, attempt: attempt, failure: failure, status: parks ? .parked : .failed, timedOut: false, at: now)
            if case .recorded(let step, _) = change {
                if parks {
                    statistics.record(.stepParked)
                    machine.parked(messageID)
                    logger.warning("a step failed for good and was dead-lettered; workflow parked until it is replayed", metadata: ["workflow.id": "\(step.workflowID)", "message.id": "\(messageID)", "error": "\(failure)"])
                    try await announceParked(step, failure: failure)
                } else {
                    statistics.record(.stepFailed)
                    if let owner, let run {
                        endStep(messageID, owner: owner, outcome: "failed", failure: failure)
                        run.resolve(owner.position, .failure(ActivityError(activity: owner.call.activity, failure: failure)))
                    }
                }
            }
            return change
        case .timedOut(let failure):
            let change = try await store.failStep(messageID: messageID, attempt: 0, failure: failure, status: .failed, timedOut: true, at: now)
            if case .recorded = change, let owner, let run {
                statistics.record(.stepTimedOut)
                endStep(messageID, owner: owner, outcome: "failed", failure: failure)
                run.resolve(owner.position, .failure(ActivityError(activity: owner.call.activity, failure: failure)))
            }
            return change
        }
    }

    /// Resumes the code waiting on a step whose outcome the store already has: recorded
    /// without this run (before it was launched), and now repeated or found.
    func resumeFromRecord(_ step: StepRecord, run: WorkflowRun) {
        guard let owner = stepOwners[step.messageID] else { return }
        switch step.status {
        case .completed:
            endStep(step.messageID, owner: owner, outcome: "completed", failure: nil)
            run.resolve(owner.position, .success(step.result ?? .null))
        case .failed:
            let failure = step.error ?? .nonRetryable(.unknown, "no error was recorded")
            endStep(step.messageID, owner: owner, outcome: "failed", failure: failure)
            run.resolve(owner.position, .failure(ActivityError(activity: owner.call.activity, failure: failure)))
        case .scheduled, .parked:
            break
        }
    }

    /// A step its workflow waited on has its outcome: it is no longer watched, and its span ends.
    private func endStep(_ messageID: String, owner: StepOwner, outcome: String, failure: ActivityFailure?) {
        stepOwners[messageID] = nil
        machine.stepEnded(messageID)
        statistics.stepEnded(activity: owner.call.activity, outcome: outcome, after: now.timeIntervalSince(owner.scheduledAt))
        guard let span = stepSpans.removeValue(forKey: messageID) else { return }
        span.attributes[FlowSpanAttribute.outcome] = outcome
        if let failure {
            span.attributes[FlowSpanAttribute.errorType] = failure.type
            span.setStatus(SpanStatus(code: .error, message: failure.message))
        }
        span.end()
    }

    /// Hands a step's outcome to its workflow's driver when the workflow runs here, or
    /// records it directly when it does not. Returns what recording it did.
    func deliverOutcome(_ result: StepResult, messageID: String) async throws -> StepChange {
        // A message id is `<workflow id>/<step key>`, and no step key has a slash.
        let workflowID = stepOwners[messageID]?.workflowID ?? messageID.lastIndex(of: "/").map { String(messageID[..<$0]) }
        // Without a driver to take it (its workflow stopped running here meanwhile), the
        // outcome is recorded directly below.
        if let workflowID, let handle = runs[workflowID] {
            let handed: StepChange? = try await withCheckedThrowingContinuation { done in
                if case .terminated = handle.inputs.yield(.outcome(messageID: messageID, result, done: done)) { done.resume(returning: nil) }
            }
            if let handed { return handed }
        }
        return try await recordOutcome(result, messageID: messageID, owner: nil, run: nil)
    }
}
