import FlowCoordinator
import FlowCore
import Foundation
import Synchronization

/// A workflow store that "crashes" after a number of writes: the write that would exceed
/// it, and every call after it, fail, and `onCrash` runs once (the test closes the
/// coordinator's connection there, so nothing more leaves the crashed process). Reads
/// before the crash pass through. With it a test stops a coordinator between any record
/// and the publish that follows it.
final class CrashingStore: WorkflowStore {
    struct SimulatedCrash: Error, CustomStringConvertible {
        var description: String { "the coordinator crashed here (simulated)" }
    }

    private let store: any WorkflowStore
    private let writesBeforeCrash: Int
    private let onCrash: @Sendable () -> Void
    private let state = Mutex((writes: 0, crashed: false))

    init(_ store: any WorkflowStore, writesBeforeCrash: Int, onCrash: @escaping @Sendable () -> Void) {
        self.store = store
        self.writesBeforeCrash = writesBeforeCrash
        self.onCrash = onCrash
    }

    var crashed: Bool { state.withLock { $0.crashed } }
    var writes: Int { state.withLock { $0.writes } }

    private func read<T>(_ body: () async throws -> T) async throws -> T {
        if crashed { throw SimulatedCrash() }
        return try await body()
    }

    private func write<T>(_ body: () async throws -> T) async throws -> T {
        let crashesNow = state.withLock { state -> Bool? in
            if state.crashed { return nil }
            if state.writes == writesBeforeCrash {
                state.crashed = true
                return true
            }
            state.writes += 1
            return false
        }
        switch crashesNow {
        case nil: throw SimulatedCrash()
        case true?:
            onCrash()
            throw SimulatedCrash()
        case false?: return try await body()
        }
    }

    func startWorkflow(id: String, name: String, input: JSONText, recipient: ResultRecipient?, traceContext: [String: String], at now: Date) async throws -> WorkflowStartOutcome {
        try await write { try await store.startWorkflow(id: id, name: name, input: input, recipient: recipient, traceContext: traceContext, at: now) }
    }
    func workflow(id: String) async throws -> WorkflowRecord? { try await read { try await store.workflow(id: id) } }
    func journal(workflowID: String) async throws -> [JournalEntry] { try await read { try await store.journal(workflowID: workflowID) } }
    func workflows(matching filter: WorkflowFilter, after cursor: WorkflowCursor?, limit: Int) async throws -> [WorkflowSummary] {
        try await read { try await store.workflows(matching: filter, after: cursor, limit: limit) }
    }
    func countWorkflows(matching filter: WorkflowFilter) async throws -> Int { try await read { try await store.countWorkflows(matching: filter) } }
    func unfinishedWorkflows() async throws -> [WorkflowRecord] { try await read { try await store.unfinishedWorkflows() } }
    func finishWorkflow(id: String, status: WorkflowStatus, output: JSONText?, error: ActivityFailure?, at now: Date) async throws -> (WorkflowRecord, [ResultRecipient])? {
        try await write { try await store.finishWorkflow(id: id, status: status, output: output, error: error, at: now) }
    }
    func requestCancel(id: String, reason: String, at now: Date) async throws -> WorkflowRecord? { try await write { try await store.requestCancel(id: id, reason: reason, at: now) } }
    func recipients(workflowID: String) async throws -> [ResultRecipient] { try await read { try await store.recipients(workflowID: workflowID) } }
    func finishedWithRecipients() async throws -> [WorkflowRecord] { try await read { try await store.finishedWithRecipients() } }
    func removeRecipient(workflowID: String, _ recipient: ResultRecipient) async throws { try await write { try await store.removeRecipient(workflowID: workflowID, recipient) } }
    func appendHistory(workflowID: String, kind: HistoryEvent.Kind, stepKey: String?, detail: String, at now: Date) async throws {
        try await write { try await store.appendHistory(workflowID: workflowID, kind: kind, stepKey: stepKey, detail: detail, at: now) }
    }
    func history(workflowID: String) async throws -> [HistoryEvent] { try await read { try await store.history(workflowID: workflowID) } }
    func history(workflowID: String, after: Int64?, limit: Int) async throws -> [SequencedHistoryEvent] {
        try await read { try await store.history(workflowID: workflowID, after: after, limit: limit) }
    }
    func step(messageID: String) async throws -> StepRecord? { try await read { try await store.step(messageID: messageID) } }
    func steps(workflowID: String) async throws -> [StepRecord] { try await read { try await store.steps(workflowID: workflowID) } }
    func scheduleStep(_ step: StepRecord, position: Int) async throws -> StepRecord { try await write { try await store.scheduleStep(step, position: position) } }
    func recordMarker(workflowID: String, position: Int, name: String, value: JSONText, at now: Date) async throws {
        try await write { try await store.recordMarker(workflowID: workflowID, position: position, name: name, value: value, at: now) }
    }
    func setDivergence(workflowID: String, reason: String?, at now: Date) async throws {
        try await write { try await store.setDivergence(workflowID: workflowID, reason: reason, at: now) }
    }
    func markSent(messageID: String, at now: Date, resentBecause reason: String?) async throws -> StepHead? {
        try await write { try await store.markSent(messageID: messageID, at: now, resentBecause: reason) }
    }
    func recordProgress(messageID: String, attempt: Int, details: JSONText?, at now: Date) async throws {
        try await write { try await store.recordProgress(messageID: messageID, attempt: attempt, details: details, at: now) }
    }
    func completeStep(messageID: String, attempt: Int, output: JSONText, at now: Date) async throws -> StepChange {
        try await write { try await store.completeStep(messageID: messageID, attempt: attempt, output: output, at: now) }
    }
    func failStep(messageID: String, attempt: Int, failure: ActivityFailure, status: StepStatus, timedOut: Bool, at now: Date) async throws -> StepChange {
        try await write { try await store.failStep(messageID: messageID, attempt: attempt, failure: failure, status: status, timedOut: timedOut, at: now) }
    }
    func timer(workflowID: String, key: String, position: Int, firesAfter duration: Duration, at now: Date) async throws -> (fireAt: Date, fired: Bool) {
        try await write { try await store.timer(workflowID: workflowID, key: key, position: position, firesAfter: duration, at: now) }
    }
    func markTimerFired(workflowID: String, key: String, at now: Date) async throws { try await write { try await store.markTimerFired(workflowID: workflowID, key: key, at: now) } }
    func upsertSchedule(_ schedule: ScheduleRecord) async throws { try await write { try await store.upsertSchedule(schedule) } }
    func removeSchedule(name: String) async throws -> Bool { try await write { try await store.removeSchedule(name: name) } }
    func schedules() async throws -> [ScheduleRecord] { try await read { try await store.schedules() } }
    func recordScheduleRun(name: String, runAt: Date, nextRunAt: Date) async throws { try await write { try await store.recordScheduleRun(name: name, runAt: runAt, nextRunAt: nextRunAt) } }
}
