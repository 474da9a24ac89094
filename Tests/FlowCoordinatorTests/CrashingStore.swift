import FlowCoordinator
import FlowCore
import Foundation
import Synchronization

/// A workflow store that "crashes" after a number of writes: the write that would exceed
/// it, and every call after it, fail, and `onCrash` runs once (the test closes the
/// coordinator's connection there, so nothing more leaves the crashed process). Reads
/// before the crash pass through. With it a test stops a coordinator between any record
/// and the publish that follows it.
///
/// With `recovers`, the store instead fails that one write, as a full disk or a lost
/// database server would, and takes every call after it: the coordinator lives on.
final class CrashingStore: WorkflowStore {
    struct SimulatedCrash: Error, CustomStringConvertible {
        var description: String { "the coordinator crashed here (simulated)" }
    }

    private let store: any WorkflowStore
    private let writesBeforeCrash: Int
    private let onCrash: @Sendable () -> Void
    private let recovers: Bool
    /// Asked before each journal read: true fails that read, as a store that is briefly
    /// unreachable would (the wait in it lets a test line up what happens meanwhile).
    private let failsJournalRead: @Sendable (String) async -> Bool
    private let state = Mutex((writes: 0, crashed: false, failed: false))

    init(
        _ store: any WorkflowStore, writesBeforeCrash: Int, recovers: Bool = false, onCrash: @escaping @Sendable () -> Void = {},
        failsJournalRead: @escaping @Sendable (String) async -> Bool = { _ in false }
    ) {
        self.store = store
        self.failsJournalRead = failsJournalRead
        self.writesBeforeCrash = writesBeforeCrash
        self.recovers = recovers
        self.onCrash = onCrash
    }

    /// The write that was to fail has failed (with `recovers`).
    var failed: Bool { state.withLock { $0.failed } }

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
                state.writes += 1
                if recovers {
                    state.failed = true
                    return nil
                }
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

    func create(_ start: WorkflowStart, epoch: Int64, at now: Date) async throws -> WorkflowStartOutcome {
        try await write { try await store.create(start, epoch: epoch, at: now) }
    }
    func append(_ events: [WorkflowEvent], to workflowID: String, expectedSequence: Int64, epoch: Int64, at now: Date) async throws -> [JournalEntry] {
        try await write { try await store.append(events, to: workflowID, expectedSequence: expectedSequence, epoch: epoch, at: now) }
    }
    func journal(workflowID: String, after: Int64, limit: Int) async throws -> [JournalEntry] {
        if await failsJournalRead(workflowID) { throw SimulatedCrash() }
        return try await read { try await store.journal(workflowID: workflowID, after: after, limit: limit) }
    }
    func startNextRun(
        of workflowID: String, closing: WorkflowEvent?, journal: [JournalEntry], childrenFrom: Int, requestID: String?, expectedSequence: Int64, epoch: Int64, at now: Date
    ) async throws -> WorkflowRecord {
        try await write {
            try await store.startNextRun(of: workflowID, closing: closing, journal: journal, childrenFrom: childrenFrom, requestID: requestID, expectedSequence: expectedSequence, epoch: epoch, at: now)
        }
    }
    func runs(of workflowID: String) async throws -> [WorkflowSummary] { try await read { try await store.runs(of: workflowID) } }
    func dueTimers(until: Date, limit: Int) async throws -> [DueTimer] { try await read { try await store.dueTimers(until: until, limit: limit) } }
    func workflow(id: String) async throws -> WorkflowRecord? { try await read { try await store.workflow(id: id) } }
    func workflows(matching filter: WorkflowFilter, after cursor: WorkflowCursor?, limit: Int) async throws -> [WorkflowSummary] {
        try await read { try await store.workflows(matching: filter, after: cursor, limit: limit) }
    }
    func countWorkflows(matching filter: WorkflowFilter) async throws -> Int { try await read { try await store.countWorkflows(matching: filter) } }
    func unfinishedWorkflows() async throws -> [WorkflowRecord] { try await read { try await store.unfinishedWorkflows() } }
    func step(messageID: String) async throws -> StepRecord? { try await read { try await store.step(messageID: messageID) } }
    func steps(workflowID: String) async throws -> [StepRecord] { try await read { try await store.steps(workflowID: workflowID) } }
    func history(workflowID: String, after: Int64?, limit: Int) async throws -> [SequencedHistoryEvent] {
        try await read { try await store.history(workflowID: workflowID, after: after, limit: limit) }
    }
    func note(_ note: DeliveryNote, at now: Date) async throws { try await write { try await store.note(note, at: now) } }
    func recipients(workflowID: String) async throws -> [ResultRecipient] { try await read { try await store.recipients(workflowID: workflowID) } }
    func finishedWithRecipients() async throws -> [WorkflowRecord] { try await read { try await store.finishedWithRecipients() } }
    func removeRecipient(workflowID: String, _ recipient: ResultRecipient) async throws { try await write { try await store.removeRecipient(workflowID: workflowID, recipient) } }
    func upsertSchedule(_ schedule: ScheduleRecord) async throws { try await write { try await store.upsertSchedule(schedule) } }
    func removeSchedule(name: String) async throws -> Bool { try await write { try await store.removeSchedule(name: name) } }
    func schedules() async throws -> [ScheduleRecord] { try await read { try await store.schedules() } }
    func attributes(workflowID: String) async throws -> WorkflowAttributes { try await read { try await store.attributes(workflowID: workflowID) } }
    func recordScheduleState(_ schedule: ScheduleRecord) async throws { try await write { try await store.recordScheduleState(schedule) } }
    func setSchedulePaused(name: String, paused: Bool, note: String?) async throws -> ScheduleRecord? {
        try await write { try await store.setSchedulePaused(name: name, paused: paused, note: note) }
    }
}
