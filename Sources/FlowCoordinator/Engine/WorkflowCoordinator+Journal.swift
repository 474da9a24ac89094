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
    /// journal it holds. Returns the journal as it now stands.
    @discardableResult
    func append(_ events: [WorkflowEvent], to workflowID: String) async throws -> WorkflowJournal {
        guard let journal = journals[workflowID] else {
            throw CoordinatorUnavailable(message: "workflow \(workflowID) has no journal loaded here to append \(events.map(\.kind)) to")
        }
        let next = try await append(events, after: journal, of: workflowID)
        journals[workflowID] = next
        return next
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
