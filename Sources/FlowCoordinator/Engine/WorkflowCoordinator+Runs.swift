import FlowCore
import Foundation
import FlowObservability
import Logging
import Tracing

/// A workflow's runs: a continue-as-new from its code, or an operator's reset, ends the
/// current run and starts the next one under the same workflow id, in one write
/// (``WorkflowStore/startNextRun(of:closing:journal:childrenFrom:expectedSequence:epoch:at:)``).
/// The run that ends is kept as `<id>@run-<n>`; docs/workflows.md, "Runs", tells the story.
extension WorkflowCoordinator {
    /// A reset waiting for the run it replaces to stop here.
    struct PendingReset: Sendable {
        var position: Int
        var keepSignals: Bool
        var reason: String
        var requestID: String?
        var done: CheckedContinuation<WorkflowRecord?, any Error>
    }

    // MARK: Continue-as-new

    /// The code of `record`'s run continued as new with `input`: records it with the next
    /// run, and launches that. `ended` is the journal the run ended with, `unreceived` the
    /// ids of the signals its code had not received, which the next run gets.
    func continueAsNew(_ record: WorkflowRecord, input: JSONText, ended known: WorkflowJournal?, unreceived: Set<String>, steps: Int) async throws {
        let decided = known?.lastSequence ?? .max
        let epoch = configuration.epoch
        let at = now
        let (next, ended, journal) = try await startNextRun(of: record.id, closing: .workflowContinuedAsNew(input: input), childrenFrom: 0, requestID: nil, from: known) { journal in
            try journal.continuedJournal(input: input, carrying: unreceived, after: decided, epoch: epoch, at: at)
        }
        logger.info("workflow continued as new", metadata: ["workflow.id": "\(record.id)", "workflow.run": "\(next.run)"])
        await afterNextRun(of: record, status: .continuedAsNew, ended: ended, next: next, journal: journal, childrenFrom: 0, steps: steps)
    }

    // MARK: Reset

    /// Resets a workflow to command `position`: its current run ends `reset` (or keeps the
    /// end it had) and the next run starts from its journal cut back to before that
    /// command (``WorkflowJournal/resetJournal(to:keepSignals:epoch:)``), so the code runs
    /// that command and what follows again. Returns the next run, or nil when there is no
    /// such workflow. A position the journal does not have is refused with `InvalidInput`
    /// and changes nothing.
    ///
    /// A run here is stopped first, where it stands: the reset is carried out when its
    /// driver has ended (``drive(_:)``). `requestID` makes a request sent again (a command
    /// redelivered after a crash) reset once: the run it started is returned.
    public func reset(workflowID: String, to position: Int, keepSignals: Bool = true, reason: String, requestID: String? = nil) async throws -> WorkflowRecord? {
        guard let current = try await store.workflow(id: workflowID) else { return nil }
        if let requestID, current.runRequestID == requestID { return current }
        guard current.chainID == current.id else {
            throw ActivityFailure.nonRetryable(
                .invalidInput, "\(workflowID) is run \(current.run) of \(current.chainID), which a later run replaced: reset \(current.chainID), whose journal is the workflow's now"
            )
        }
        let entries = try await store.journal(workflowID: workflowID)
        guard !entries.isEmpty else { return nil }
        do {
            _ = try WorkflowJournal(entries).resetJournal(to: position, keepSignals: keepSignals, epoch: configuration.epoch)
        } catch let error as RunError {
            throw ActivityFailure.nonRetryable(.invalidInput, "cannot reset \(workflowID): \(error)")
        }
        if let handle = runs[workflowID], machine.supersede(workflowID) {
            return try await withCheckedThrowingContinuation { done in
                pendingResets[workflowID] = PendingReset(position: position, keepSignals: keepSignals, reason: reason, requestID: requestID, done: done)
                handle.inputs.finish()
            }
        }
        return try await carryOutReset(workflowID: workflowID, to: position, keepSignals: keepSignals, reason: reason, requestID: requestID, from: nil)
    }

    /// The run a reset waited for stopped here (``CoordinatorStateMachine/Ending/superseded``).
    func supersededRunStopped(_ record: WorkflowRecord, journal: WorkflowJournal?) async {
        guard let pending = pendingResets.removeValue(forKey: record.id) else { return }
        do {
            pending.done.resume(returning: try await carryOutReset(workflowID: record.id, to: pending.position, keepSignals: pending.keepSignals, reason: pending.reason, requestID: pending.requestID, from: journal))
        } catch {
            // The run is not running anywhere now: it runs again, reset or not.
            let at = machine.relaunchLater(record.id, at: now, random: Double.random(in: 0..<1))
            logger.error("could not reset a workflow; running it again as it was", metadata: ["workflow.id": "\(record.id)", "error": "\(error)", "at": "\(at)"])
            pending.done.resume(throwing: error)
        }
    }

    private func carryOutReset(
        workflowID: String, to position: Int, keepSignals: Bool, reason: String, requestID: String?, from known: WorkflowJournal?
    ) async throws -> WorkflowRecord? {
        guard let record = try await store.workflow(id: workflowID) else { return nil }
        let epoch = configuration.epoch
        let wasFinished = record.status.isFinished
        let closing: WorkflowEvent? = wasFinished ? nil : .workflowReset(position: position, reason: reason)
        let (next, ended, journal) = try await startNextRun(of: workflowID, closing: closing, childrenFrom: position, requestID: requestID, from: known) { journal in
            do {
                return try journal.resetJournal(to: position, keepSignals: keepSignals, epoch: epoch)
            } catch {
                throw ActivityFailure.nonRetryable(.invalidInput, "cannot reset \(workflowID): \(error)")
            }
        }
        logger.info("workflow reset", metadata: ["workflow.id": "\(workflowID)", "workflow.run": "\(next.run)", "position": "\(position)", "reason": "\(reason)"])
        await afterNextRun(of: record, status: wasFinished ? nil : .reset, ended: ended, next: next, journal: journal, childrenFrom: position, steps: 0)
        // The steps the old run had open from the cut on are asked to stop; those before it
        // are the next run's, under the same message ids.
        let open = ended.commands.enumerated().compactMap { command -> (messageID: String, queue: String)? in
            guard command.offset >= position, case .activity(let scheduled, .waiting) = command.element else { return nil }
            return ("\(workflowID)/\(scheduled.stepKey)", scheduled.queue)
        }
        await cancelSteps(open, of: workflowID, status: .reset)
        return next
    }

    // MARK: Signals and updates sent again

    /// The journal of the run before run `run` of `workflowID`, when there is one: a
    /// signal or update sent again under its id (its answer was lost) may find its first
    /// delivery there, when the workflow continued as new or was reset in between. One run
    /// back is the window: a sender asks again within seconds, and going further would
    /// read a history continue-as-new is meant to bound.
    func earlierRun(of workflowID: String, run: Int) async throws -> WorkflowJournal? {
        guard run > 1 else { return nil }
        if let known = earlierRuns[workflowID], known.run == run - 1 { return known.journal }
        let entries = try await store.journal(workflowID: WorkflowRecord.runID(of: workflowID, run: run - 1))
        guard !entries.isEmpty else { return nil }
        let journal = try WorkflowJournal(entries)
        earlierRuns[workflowID] = (run - 1, journal)
        return journal
    }

    // MARK: Both

    /// Reads (or starts from `known`) the journal of the run that ends, builds the next
    /// run's journal from it with `build`, and writes both; when another write reached the
    /// journal first, reads it and builds again. Returns the next run's record, the journal
    /// the old run ended with, and the next run's journal.
    private func startNextRun(
        of workflowID: String, closing: WorkflowEvent?, childrenFrom: Int, requestID: String?, from known: WorkflowJournal?, _ build: (WorkflowJournal) throws -> [JournalEntry]
    ) async throws -> (WorkflowRecord, WorkflowJournal, WorkflowJournal) {
        var journal = known
        for _ in 0..<Self.conflictRetries {
            if journal == nil { journal = try WorkflowJournal(try await store.journal(workflowID: workflowID)) }
            let entries = try build(journal!)
            let at = now
            do {
                let next = try await store.startNextRun(
                    of: workflowID, closing: closing, journal: entries, childrenFrom: childrenFrom, requestID: requestID, expectedSequence: journal!.lastSequence, epoch: configuration.epoch, at: at
                )
                var ended = journal!
                if let closing { try ended.apply(JournalEntry(sequence: ended.nextSequence, epoch: configuration.epoch, recordedAt: at, event: closing)) }
                return (next, ended, try WorkflowJournal(entries))
            } catch let error as WorkflowStoreError where error.code == .sequenceConflict {
                journal = nil
            }
        }
        throw CoordinatorUnavailable(message: "workflow \(workflowID)'s journal changed under \(Self.conflictRetries) writes in a row: is a second coordinator writing to it?")
    }

    /// After a next run was written: the next run starts here, and the old run's children
    /// get their parent-close policies. `status` is how the old run ended, nil when it had
    /// ended before (a reset of a finished workflow).
    private func afterNextRun(
        of record: WorkflowRecord, status: WorkflowStatus?, ended: WorkflowJournal, next: WorkflowRecord, journal: WorkflowJournal, childrenFrom: Int, steps: Int
    ) async {
        // Launched before anything else awaits: from now on a signal or a reply for the
        // workflow goes to the next run's driver, not to a journal it would not hold.
        startedSpans[next.id] = Self.workflowSpan(name: next.name, id: next.id, parent: MessageTracing.context(storedForm: next.traceContext))
        launch(next, resumed: false, journal: journal)
        var old = record
        old.id = WorkflowRecord.runID(of: record.id, run: record.run)
        old.parent = nil
        if let status {
            old.status = status
            statistics.workflowEnded(name: record.name, status: status, after: now.timeIntervalSince(record.startedAt), steps: steps)
        }
        await closeFamily(of: old, ended: ended, childrenFrom: childrenFrom)
    }
}
