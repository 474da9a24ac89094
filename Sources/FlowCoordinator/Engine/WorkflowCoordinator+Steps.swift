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
                trace: span?.context ?? ServiceContext.current ?? .topLevel, at: sentAt, carried: stepOwners[messageID]?.carried
            )
            try await transport.publish(message)
            try await store.note(.sent(messageID: messageID, resentBecause: reason), at: sentAt)
            machine.stepSent(messageID, at: sentAt)
        } catch {
            throw CoordinatorUnavailable(message: "cannot send \(call.activity) to \(queueName): \(error)")
        }
        statistics.record(reason == nil ? .stepSent : .stepResent)
    }

    /// Records a step's final outcome and, when its workflow runs here (`run`), resumes
    /// the code waiting on it. Called by the workflow's driver, so that outcomes reach the
    /// code in the order they are recorded; without a run (its workflow ended, or waits for
    /// a relaunch) the outcome is only recorded, and a relaunch replays it.
    func recordOutcome(_ result: StepResult, messageID: String, run: WorkflowRun?) async throws -> StepChange {
        guard let slash = messageID.lastIndex(of: "/") else { return .unknown }
        let workflowID = String(messageID[..<slash])
        let stepKey = String(messageID[messageID.index(after: slash)...])
        let decided: OutcomeDecision
        let journal: WorkflowJournal
        if run != nil, let held = journals[workflowID] {
            guard let decision = Self.decide(result, stepKey: stepKey, in: held) else { return .unknown }
            decided = decision
            // Written with the commands the code issues in answer (``flush(_:)``).
            journal = decision.answer == .record ? try stage([decision.event], to: workflowID) : held
        } else {
            let amended = try await amend(workflowID) { journal in
                let decision = Self.decide(result, stepKey: stepKey, in: journal)
                return (decision?.answer == .record ? [decision!.event] : [], decision)
            }
            guard let (decision, after) = amended, let decision else { return .unknown }
            decided = decision
            journal = after
        }
        switch decided.answer {
        case .record: break
        case .duplicate: return .alreadyFinal
        case .stale: return .unknown
        }
        let owner = stepOwners[messageID]
        let activity = decided.scheduled.activity
        switch decided.event {
        case .activityCompleted(_, _, let output):
            statistics.record(.stepCompleted)
            if decided.wasParked, journal.status == .running {
                logger.info("a replayed step completed; workflow unparked", metadata: ["workflow.id": "\(workflowID)", "message.id": "\(messageID)"])
            }
            if let owner, let run {
                endStep(messageID, owner: owner, outcome: "completed", failure: nil)
                run.resolve(decided.position, .success(output))
            }
        case .activityParked(_, _, let failure):
            statistics.record(.stepParked)
            machine.parked(messageID)
            logger.warning("a step failed for good and was dead-lettered; workflow parked until it is replayed", metadata: ["workflow.id": "\(workflowID)", "message.id": "\(messageID)", "error": "\(failure)"])
            // The notice reads the parked workflow from the store.
            try await flush(workflowID)
            try await announceParked(workflowID: workflowID, activity: activity, messageID: messageID, failure: failure)
        case .activityFailed(_, _, let failure), .activityTimedOut(_, let failure):
            guard let owner, let run else { break }
            if case .activityTimedOut = decided.event { statistics.record(.stepTimedOut) } else { statistics.record(.stepFailed) }
            endStep(messageID, owner: owner, outcome: "failed", failure: failure)
            run.resolve(decided.position, .failure(ActivityError(activity: activity, failure: failure)))
        default:
            break
        }
        return .recorded
    }

    /// What a step's outcome adds to its workflow's journal, and whether it is new: the
    /// decision the store once made in SQL, made from the journal as a value.
    static func decide(_ result: StepResult, stepKey: String, in journal: WorkflowJournal) -> OutcomeDecision? {
        guard let position = journal.position(ofStep: stepKey), case .activity(let scheduled, _) = journal.commands[position] else { return nil }
        let event: WorkflowEvent
        switch result {
        case .completed(let attempt, let output):
            event = .activityCompleted(position: position, attempt: attempt, output: output)
        case .failed(let attempt, let failure):
            // A cancelled activity was not dead-lettered: there is nothing to replay, so the
            // workflow sees the failure instead of parking.
            let parks = scheduled.options.onFinalFailure != .throw && !failure.isCancellation
            event = parks ? .activityParked(position: position, attempt: attempt, failure: failure) : .activityFailed(position: position, attempt: attempt, failure: failure)
        case .timedOut(let failure):
            event = .activityTimedOut(position: position, failure: failure)
        }
        return OutcomeDecision(position: position, scheduled: scheduled, event: event, answer: journal.answering(event), wasParked: journal.status == .parked)
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
        return try await recordOutcome(result, messageID: messageID, run: nil)
    }
}

/// What recording a step's outcome did.
enum StepChange: Sendable, Equatable {
    case recorded
    /// The step had this outcome already: a repeated reply.
    case alreadyFinal
    /// No step of a workflow waits for it (an unknown id, or its workflow ended before).
    case unknown
}

/// A step's outcome as its workflow's journal takes it (``WorkflowCoordinator/decide(_:stepKey:in:)``).
struct OutcomeDecision: Sendable, Equatable {
    var position: Int
    var scheduled: WorkflowEvent.ScheduledActivity
    var event: WorkflowEvent
    var answer: WorkflowJournal.Answer
    /// The workflow was parked before it.
    var wasParked: Bool
}
