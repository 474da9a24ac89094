import FlowCore
import Foundation

/// The coordinator's durable memory: workflows, their steps, timers, history, result
/// recipients and schedules. ``SQLiteWorkflowStore`` is the one that ships.
///
/// Every change is committed before the coordinator acts on it (sends a request,
/// acknowledges a reply, answers a start command), so a crash at any point repeats an
/// action and never loses one. What an implementation must keep:
/// - each method is one transaction: it happens whole or not at all;
/// - a step's outcome is taken once: a second final reply finds it ``StepChange/alreadyFinal(_:)``;
/// - a finished workflow keeps its first end;
/// - every time comes from the caller (`at now`), which reads the coordinator's clock, so a
///   test with a manual clock controls the whole timeline.
public protocol WorkflowStore: Sendable {
    // MARK: Workflows

    /// Records a new workflow, or returns the one that has this id; either way `recipient`
    /// will receive its result. `traceContext` is the workflow span's, kept for its steps.
    func startWorkflow(id: String, name: String, input: JSONText, recipient: ResultRecipient?, traceContext: [String: String], at now: Date) async throws -> WorkflowStartOutcome
    func workflow(id: String) async throws -> WorkflowRecord?
    /// Workflows matching `filter`, newest first (ties by id), after `cursor` when given;
    /// without their input and output, which a list does not show.
    func workflows(matching filter: WorkflowFilter, after cursor: WorkflowCursor?, limit: Int) async throws -> [WorkflowSummary]
    /// How many workflows match `filter`.
    func countWorkflows(matching filter: WorkflowFilter) async throws -> Int
    /// Workflows that must run again after a start: running or parked.
    func unfinishedWorkflows() async throws -> [WorkflowRecord]
    /// Records the end of a workflow and returns who must be told; nil when it had ended.
    func finishWorkflow(id: String, status: WorkflowStatus, output: JSONText?, error: ActivityFailure?, at now: Date) async throws -> (WorkflowRecord, [ResultRecipient])?
    /// Marks a workflow for cancellation. Returns the workflow, or nil when there is none.
    func requestCancel(id: String, reason: String, at now: Date) async throws -> WorkflowRecord?

    // MARK: Results

    /// Who still has to receive the result of workflow `workflowID`.
    func recipients(workflowID: String) async throws -> [ResultRecipient]
    /// Finished workflows whose result was not yet sent to everyone (a crash came between).
    func finishedWithRecipients() async throws -> [WorkflowRecord]
    func removeRecipient(workflowID: String, _ recipient: ResultRecipient) async throws

    // MARK: Journal

    /// The workflow's journal, oldest event first: empty when there is no such workflow.
    /// Written by the store's own writes, each event in the same transaction as the change
    /// it records.
    func journal(workflowID: String) async throws -> [JournalEntry]

    /// Records a marker, the workflow's command at `position` (which must be its next).
    func recordMarker(workflowID: String, position: Int, name: String, value: JSONText, at now: Date) async throws
    /// Parks a workflow whose code does not replay its journal, with the reason; or, with
    /// nil, sets one parked for that reason running again once its code replays.
    func setDivergence(workflowID: String, reason: String?, at now: Date) async throws

    // MARK: History

    func appendHistory(workflowID: String, kind: HistoryEvent.Kind, stepKey: String?, detail: String, at now: Date) async throws
    func history(workflowID: String) async throws -> [HistoryEvent]
    /// At most `limit` events of a workflow after sequence number `after`, oldest first.
    func history(workflowID: String, after: Int64?, limit: Int) async throws -> [SequencedHistoryEvent]

    // MARK: Steps

    func step(messageID: String) async throws -> StepRecord?
    func steps(workflowID: String) async throws -> [StepRecord]
    /// Records a new step, the workflow's command at `position` (which must be its next),
    /// before its request is sent; returns the step already recorded under the same message
    /// id, if any.
    func scheduleStep(_ step: StepRecord, position: Int) async throws -> StepRecord
    /// Records that the request of a step was sent (and confirmed by the broker).
    func markSent(messageID: String, at now: Date, resentBecause reason: String?) async throws -> StepHead?
    func recordProgress(messageID: String, attempt: Int, details: JSONText?, at now: Date) async throws
    /// Records a step's successful end. A parked step takes it too: that is how a replay
    /// from the dead-letter queue resumes its workflow.
    func completeStep(messageID: String, attempt: Int, output: JSONText, at now: Date) async throws -> StepChange
    /// Records a step's failure: `parked` keeps it waiting for a replay and parks its
    /// workflow; `failed` ends it.
    func failStep(messageID: String, attempt: Int, failure: ActivityFailure, status: StepStatus, timedOut: Bool, at now: Date) async throws -> StepChange

    // MARK: Timers

    /// The time a durable timer fires: recorded on first use (the command at `position`,
    /// which must be the workflow's next), read back after.
    func timer(workflowID: String, key: String, position: Int, firesAfter duration: Duration, at now: Date) async throws -> (fireAt: Date, fired: Bool)
    func markTimerFired(workflowID: String, key: String, at now: Date) async throws

    // MARK: Schedules

    /// Adds a schedule, or replaces the one of the same name (keeping its run count).
    func upsertSchedule(_ schedule: ScheduleRecord) async throws
    /// Removes a schedule; returns whether there was one.
    func removeSchedule(name: String) async throws -> Bool
    func schedules() async throws -> [ScheduleRecord]
    /// Records that a schedule ran at `runAt` and next runs at `nextRunAt`.
    func recordScheduleRun(name: String, runAt: Date, nextRunAt: Date) async throws
}

/// What a start did.
public enum WorkflowStartOutcome: Sendable {
    case created(WorkflowRecord)
    /// The id was used before: nothing new runs (the reuse policy).
    case existing(WorkflowRecord)
}

/// How a final reply changed a step.
public enum StepChange: Sendable {
    /// The step took the outcome; `unparked` when it ended a park.
    case recorded(StepHead, unparked: Bool)
    /// The step had already ended: a repeated reply.
    case alreadyFinal(StepHead)
    /// No step has this message id, or its workflow ended.
    case unknown
}

extension WorkflowStore {
    /// Records a new workflow that belongs to no trace.
    public func startWorkflow(id: String, name: String, input: JSONText, recipient: ResultRecipient?, at now: Date) async throws -> WorkflowStartOutcome {
        try await startWorkflow(id: id, name: name, input: input, recipient: recipient, traceContext: [:], at: now)
    }
}
