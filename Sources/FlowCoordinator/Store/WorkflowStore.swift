import FlowCore
import Foundation

/// The coordinator's durable memory, cut to what an engine on its journal needs: each
/// workflow's journal, the projections lists and queries read, the results still owed,
/// and schedules. ``SQLiteWorkflowStore`` ships; ``InMemoryWorkflowStore`` is for tests;
/// both pass one conformance suite (`Tests/FlowCoordinatorTests/WorkflowStoreConformance.swift`).
///
/// **The store decides nothing.** The coordinator decides each event from the workflow's
/// journal as a value (``WorkflowJournal``, which holds the rules) and hands the store the
/// events to append. The store checks two things only, and a write that fails either
/// changes nothing:
/// - the **expected sequence number**: the writer's view of the journal is the latest, so
///   two writers that read the same journal cannot both append to it;
/// - the **epoch**: the writer's ownership epoch is not older than the newest one that
///   wrote to the workflow. A writer with a newer epoch takes the workflow over by writing;
///   from then on the old owner's writes fail, whatever its clock says. One coordinator
///   never changes its epoch; PostgreSQL's partition leases will.
///
/// What the store promises:
/// - each call is one transaction: it happens whole or not at all;
/// - a workflow's events are numbered 1, 2, 3… with no gap, and read back in that order;
/// - the projections (a workflow's status, parked reason and steps, timers, the history
///   lines) change in the same transaction as the events they follow from, so they never
///   disagree with the journal;
/// - every time comes from the caller (`at`), which reads the coordinator's clock.
public protocol WorkflowStore: Sendable {
    // MARK: The journal

    /// Creates a workflow with the first event of its journal (`workflow_started`), or
    /// finds the one that has this id, which does not start again. `start.recipient`, when
    /// given, will receive the result either way.
    func create(_ start: WorkflowStart, epoch: Int64, at now: Date) async throws -> WorkflowStartOutcome

    /// Appends `events` to a workflow's journal, numbered on from `expectedSequence`, under
    /// `epoch`. Returns the entries as written. Fails, changing nothing, with
    /// ``WorkflowStoreError/Code/sequenceConflict`` when the journal's last sequence number
    /// is not `expectedSequence`, ``WorkflowStoreError/Code/staleEpoch`` when a newer epoch
    /// has written to it, and ``WorkflowStoreError/Code/noSuchWorkflow``.
    @discardableResult
    func append(_ events: [WorkflowEvent], to workflowID: String, expectedSequence: Int64, epoch: Int64, at now: Date) async throws -> [JournalEntry]

    /// At most `limit` entries of a workflow's journal after sequence number `after`,
    /// oldest first; none when there is no such workflow.
    func journal(workflowID: String, after: Int64, limit: Int) async throws -> [JournalEntry]

    /// Timers started and not fired that fire at or before `until`, soonest first: what a
    /// coordinator arms when it takes workflows over.
    func dueTimers(until: Date, limit: Int) async throws -> [DueTimer]

    // MARK: Runs

    /// Ends the current run of `workflowID` with `closing` (``WorkflowEvent/workflowContinuedAsNew(input:)``
    /// or ``WorkflowEvent/workflowReset(position:reason:)``; nil for a run that has ended
    /// already, which keeps its end) and starts its next run in its place, in one
    /// transaction, fenced as ``append(_:to:expectedSequence:epoch:at:)`` is:
    /// - the run that ends keeps its journal, steps, timers and history under its own id,
    ///   ``WorkflowRecord/runID(of:run:)``, with the status its end gives it, a copy of its
    ///   search attributes, and its children from position `childrenFrom` on;
    /// - the next run takes the workflow id, with run number one more, the parent,
    ///   recipients, trace, memo and search attributes, and `journal` (numbered from 1,
    ///   starting with `workflow_started`) as its journal, projected as if appended;
    ///   `requestID` is kept on it (``WorkflowRecord/runRequestID``).
    ///
    /// Returns the next run's record.
    func startNextRun(
        of workflowID: String, closing: WorkflowEvent?, journal: [JournalEntry], childrenFrom: Int, requestID: String?, expectedSequence: Int64, epoch: Int64, at now: Date
    ) async throws -> WorkflowRecord

    /// Every run of a workflow id, first to current; empty for an unknown id.
    func runs(of workflowID: String) async throws -> [WorkflowSummary]

    // MARK: Projections

    func workflow(id: String) async throws -> WorkflowRecord?
    /// Workflows matching `filter`, newest first (ties by id), after `cursor` when given;
    /// without their input and output, which a list does not show.
    func workflows(matching filter: WorkflowFilter, after cursor: WorkflowCursor?, limit: Int) async throws -> [WorkflowSummary]
    /// How many workflows match `filter`.
    func countWorkflows(matching filter: WorkflowFilter) async throws -> Int
    /// Workflows that must run again after a start: running or parked.
    func unfinishedWorkflows() async throws -> [WorkflowRecord]
    func step(messageID: String) async throws -> StepRecord?
    func steps(workflowID: String) async throws -> [StepRecord]
    /// At most `limit` history lines of a workflow after sequence number `after`, oldest first.
    func history(workflowID: String, after: Int64?, limit: Int) async throws -> [SequencedHistoryEvent]

    /// Notes what the journal does not hold: that a step's request was sent, that its
    /// worker was heard from, that a coordinator took a workflow up. Notes are for the
    /// people reading a workflow and for when to send a step again; no decision about the
    /// workflow reads them, so they are not events.
    func note(_ note: DeliveryNote, at now: Date) async throws

    // MARK: Results owed

    /// Who still has to receive the result of workflow `workflowID`.
    func recipients(workflowID: String) async throws -> [ResultRecipient]
    /// Finished workflows whose result was not yet sent to everyone (a crash came between).
    func finishedWithRecipients() async throws -> [WorkflowRecord]
    func removeRecipient(workflowID: String, _ recipient: ResultRecipient) async throws

    // MARK: Schedules

    /// Adds a schedule, or replaces the one of the same name (keeping its run count).
    func upsertSchedule(_ schedule: ScheduleRecord) async throws
    /// Removes a schedule; returns whether there was one.
    func removeSchedule(name: String) async throws -> Bool
    func schedules() async throws -> [ScheduleRecord]
    /// Writes a schedule's run state as the coordinator decided it: its next time, last
    /// run, run count, last workflow, buffer and skipped count. Its definition and its pause
    /// stay as they are, so an operator's change made meanwhile is kept. Nothing when it
    /// was removed meanwhile.
    func recordScheduleState(_ schedule: ScheduleRecord) async throws

    /// Pauses (with `note`) or resumes a schedule; returns it, or nil when there is none.
    func setSchedulePaused(name: String, paused: Bool, note: String?) async throws -> ScheduleRecord?

    /// What the workflow filed about itself (``WorkflowAttributes``), from its
    /// `search_attributes` and `memo` markers; empty for an unknown id.
    func attributes(workflowID: String) async throws -> WorkflowAttributes
}

/// What starts a workflow.
public struct WorkflowStart: Sendable, Equatable {
    public var id: String
    public var name: String
    public var input: JSONText
    /// Who receives the result; nil for a fire-and-forget start.
    public var recipient: ResultRecipient?
    /// The workflow span's W3C trace context, kept for its steps across restarts.
    public var traceContext: [String: String]
    /// The workflow that started this one as its child, and the position of that command.
    public var parent: ParentLink?

    public init(id: String, name: String, input: JSONText, recipient: ResultRecipient? = nil, traceContext: [String: String] = [:], parent: ParentLink? = nil) {
        self.id = id
        self.name = name
        self.input = input
        self.recipient = recipient
        self.traceContext = traceContext
        self.parent = parent
    }
}

/// A child workflow's parent: the workflow whose command at `position` started it, and
/// which its end is reported to.
public struct ParentLink: Sendable, Equatable, Codable {
    public var workflowID: String
    public var position: Int

    public init(workflowID: String, position: Int) {
        self.workflowID = workflowID
        self.position = position
    }
}

/// What a start did.
public enum WorkflowStartOutcome: Sendable {
    case created(WorkflowRecord)
    /// The id was used before: nothing new runs (the reuse policy).
    case existing(WorkflowRecord)
}

/// A timer that is due.
public struct DueTimer: Sendable, Equatable {
    public var workflowID: String
    public var position: Int
    public var key: String
    public var fireAt: Date

    public init(workflowID: String, position: Int, key: String, fireAt: Date) {
        self.workflowID = workflowID
        self.position = position
        self.key = key
        self.fireAt = fireAt
    }
}

/// A note beside the journal (``WorkflowStore/note(_:at:)``).
public enum DeliveryNote: Sendable, Equatable {
    /// A step's request was published and confirmed; `resentBecause` when it was a re-send.
    case sent(messageID: String, resentBecause: String?)
    /// A step's worker reported progress on `attempt`.
    case heard(messageID: String, attempt: Int, details: JSONText?)
    /// A coordinator took a workflow up again.
    case resumed(workflowID: String, by: String)
}

/// The workflow store refused a write, or could not be opened or read.
public struct WorkflowStoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for programs.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String { case sequenceConflict, staleEpoch, noSuchWorkflow, unavailable, unreadable }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// Another write reached the journal first: read it again and decide again.
        public static let sequenceConflict = Code(.sequenceConflict)
        /// A writer with a newer epoch owns the workflow now: stop writing to it.
        public static let staleEpoch = Code(.staleEpoch)
        public static let noSuchWorkflow = Code(.noSuchWorkflow)
        /// The store cannot be opened or written.
        public static let unavailable = Code(.unavailable)
        /// Something stored does not read: written by another build, or edited by hand.
        public static let unreadable = Code(.unreadable)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    init(_ message: String) { self.init(.unavailable, message) }

    public var description: String { message }
}

extension WorkflowStore {
    /// A workflow's whole journal, oldest event first, read a page at a time: empty when
    /// there is no such workflow.
    public func journal(workflowID: String) async throws -> [JournalEntry] {
        var entries: [JournalEntry] = []
        while true {
            let page = try await journal(workflowID: workflowID, after: entries.last?.sequence ?? 0, limit: 1000)
            entries += page
            if page.count < 1000 { return entries }
        }
    }

    /// A workflow's history lines, oldest first.
    public func history(workflowID: String) async throws -> [HistoryEvent] {
        try await history(workflowID: workflowID, after: nil, limit: .max).map(\.event)
    }
}
