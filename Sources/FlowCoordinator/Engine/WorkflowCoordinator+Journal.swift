import FlowCore
import Foundation

/// How the coordinator writes: it decides every event from the workflow's journal as a
/// value, checks it against the journal's rules, and appends it with the sequence number
/// it read and its epoch. The store decides nothing (``WorkflowStore``).
///
/// A running workflow's driver holds its journal (``journals``) and is the only writer to
/// it while the run lasts, so its appends never read first. Everything else (a reply for a
/// workflow that does not run here, a cancel of one, the end of a run) reads the journal,
/// decides, and appends; when another write came between, it reads and decides again.
extension WorkflowCoordinator {
    /// Appends events a running workflow's driver decided, to the store and then to the
    /// journal it holds, with any it staged before them. Returns the journal as it now stands.
    @discardableResult
    func append(_ events: [WorkflowEvent], to workflowID: String) async throws -> WorkflowJournal {
        try stage(events, to: workflowID)
        try await flush(workflowID)
        guard let journal = journals[workflowID] else { throw journalLost(workflowID)! }
        return journal
    }

    /// Applies events a running workflow's driver decided to the journal it holds, and
    /// keeps them for its next ``flush(_:)``, which writes them in one append with the
    /// commands they lead to: one write per step rather than two.
    ///
    /// Safe because nothing outside the coordinator sees a staged event's effect before the
    /// flush: the reply that brought it is acknowledged, and the steps its code issues are
    /// sent, only after it. A driver flushes before it waits for the next fact, so nothing
    /// stays staged while the workflow waits.
    @discardableResult
    func stage(_ events: [WorkflowEvent], to workflowID: String) throws -> WorkflowJournal {
        guard let flushedSequence = journals[workflowID]?.lastSequence else {
            throw CoordinatorUnavailable(message: "workflow \(workflowID) has no journal loaded here to append \(events.map(\.kind)) to")
        }
        guard !events.isEmpty else { return journals[workflowID]! }
        let at = now
        do {
            // In place: the journal is not copied for each fact.
            for event in events {
                try journals[workflowID]!.apply(JournalEntry(sequence: journals[workflowID]!.nextSequence, epoch: configuration.epoch, recordedAt: at, event: event))
            }
        } catch {
            forgetJournal(of: workflowID)
            throw error
        }
        staged[workflowID, default: Staged(flushedSequence: flushedSequence, at: at)].events += events
        return journals[workflowID]!
    }

    /// Writes what ``stage(_:to:)`` kept for `workflowID`. When the write fails, the
    /// journal held here is no longer the store's, so it is forgotten and the error thrown:
    /// the driver ends its run (``journalLost(_:)``), and a relaunch reads the store.
    func flush(_ workflowID: String) async throws {
        guard let pending = staged.removeValue(forKey: workflowID) else { return }
        do {
            try await store.append(pending.events, to: workflowID, expectedSequence: pending.flushedSequence, epoch: configuration.epoch, at: pending.at)
        } catch {
            forgetJournal(of: workflowID)
            throw CoordinatorUnavailable(message: "cannot record \(pending.events.map(\.kind)) for \(workflowID): \(error)")
        }
    }

    private func forgetJournal(of workflowID: String) {
        journals[workflowID] = nil
        staged[workflowID] = nil
    }

    /// The run of `workflowID` lost its journal to a write that failed, and must end.
    func journalLost(_ workflowID: String) -> CoordinatorUnavailable? {
        guard journals[workflowID] == nil else { return nil }
        return CoordinatorUnavailable(message: "a write to the journal of \(workflowID) failed; its run ends and is launched again from the store")
    }

    /// Events a driver applied to the journal it holds and has not written yet.
    struct Staged: Sendable {
        /// The last sequence number the store has.
        var flushedSequence: Int64
        var at: Date
        var events: [WorkflowEvent] = []
    }

    /// Checks `events` against `journal`'s rules, then appends them after it.
    private func append(_ events: [WorkflowEvent], after journal: WorkflowJournal, of workflowID: String) async throws -> WorkflowJournal {
        guard !events.isEmpty else { return journal }
        let at = now
        var next = journal
        for event in events {
            try next.apply(JournalEntry(sequence: next.nextSequence, epoch: configuration.epoch, recordedAt: at, event: event))
        }
        try await store.append(events, to: workflowID, expectedSequence: journal.lastSequence, epoch: configuration.epoch, at: at)
        return next
    }

    /// Reads a workflow's journal (or starts from `known`, a journal this coordinator
    /// holds), lets `decide` choose the events to append from it, and appends them. When
    /// another write reached the journal first, it reads the journal and decides again.
    /// Returns what `decide` said with the journal after the append; nil when there is no
    /// such workflow.
    func amend<Decision>(
        _ workflowID: String, from known: WorkflowJournal? = nil, _ decide: (WorkflowJournal) throws -> (events: [WorkflowEvent], decision: Decision)
    ) async throws -> (Decision, WorkflowJournal)? {
        var journal = known
        for _ in 0..<Self.conflictRetries {
            if journal == nil {
                let entries = try await store.journal(workflowID: workflowID)
                if entries.isEmpty { return nil }
                journal = try WorkflowJournal(entries)
            }
            let (events, decision) = try decide(journal!)
            do {
                return (decision, try await append(events, after: journal!, of: workflowID))
            } catch let error as WorkflowStoreError where error.code == .sequenceConflict {
                journal = nil
            }
        }
        throw CoordinatorUnavailable(message: "workflow \(workflowID)'s journal changed under \(Self.conflictRetries) writes in a row: is a second coordinator writing to it?")
    }

    /// How many times ``amend(_:from:_:)`` reads and decides again before it gives up.
    static var conflictRetries: Int { 8 }
}
