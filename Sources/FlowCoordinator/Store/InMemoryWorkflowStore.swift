import FlowCore
import Foundation
import Synchronization

/// A workflow store in memory, for tests and `FlowTestKit`: it keeps the same promises as
/// ``SQLiteWorkflowStore`` (the conformance suite holds both to them), without a file.
///
/// Its projections are read off each workflow's ``WorkflowJournal``, which it keeps as a
/// value, so it also checks every append against the journal's rules: a writer that
/// breaks them gets ``WorkflowStoreError/Code/unreadable`` here, where SQLite would trust it.
///
/// "Durable" here means: for as long as the value lives. A test that simulates a crash
/// hands the same instance to the coordinator that starts after it.
public final class InMemoryWorkflowStore: WorkflowStore {
    private struct Workflow {
        var name: String
        var input: JSONText
        var startedAt: Date
        var updatedAt: Date
        var finishedAt: Date?
        var traceContext: [String: String]
        var parent: ParentLink?
        var epoch: Int64
        var journal = WorkflowJournal()
        /// What the journal does not hold, by position: when each step was sent and heard from.
        var delivery: [Int: Delivery] = [:]
        var recipients: [ResultRecipient] = []
        var search: [String: SearchAttribute] = [:]
        var memo: [String: JSONValue]?
        var run = 1
        /// The workflow id all runs share.
        var chain: String?
        var runRequest: String?
    }

    private struct Delivery {
        var sends = 0
        var sentAt: Date?
        var lastHeardAt: Date?
        var attempt = 0
        var error: ActivityFailure?
        var scheduledAt: Date
        var heartbeat: JSONText?
    }

    private struct State {
        var workflows: [String: Workflow] = [:]
        var history: [(sequence: Int64, workflowID: String, event: HistoryEvent)] = []
        var schedules: [String: ScheduleRecord] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    // MARK: The journal

    public func create(_ start: WorkflowStart, epoch: Int64, at now: Date) async throws -> WorkflowStartOutcome {
        try state.withLock { state in
            if var existing = state.workflows[start.id] {
                if let recipient = start.recipient, !existing.recipients.contains(recipient) { existing.recipients.append(recipient) }
                state.workflows[start.id] = existing
                return .existing(Self.record(start.id, existing))
            }
            var workflow = Workflow(
                name: start.name, input: start.input, startedAt: now, updatedAt: now, traceContext: start.traceContext, parent: start.parent, epoch: epoch,
                recipients: start.recipient.map { [$0] } ?? []
            )
            let event = WorkflowEvent.workflowStarted(name: start.name, input: start.input)
            try Self.apply(event, sequence: 1, epoch: epoch, at: now, to: &workflow, id: start.id)
            state.workflows[start.id] = workflow
            Self.add(WorkflowProjection.lines(for: event, stepKey: nil), of: start.id, at: now, to: &state)
            return .created(Self.record(start.id, workflow))
        }
    }

    @discardableResult
    public func append(_ events: [WorkflowEvent], to workflowID: String, expectedSequence: Int64, epoch: Int64, at now: Date) async throws -> [JournalEntry] {
        try state.withLock { state in
            guard var workflow = state.workflows[workflowID] else { throw WorkflowStoreError(.noSuchWorkflow, "there is no workflow \(workflowID) to append to") }
            guard epoch >= workflow.epoch else {
                throw WorkflowStoreError(.staleEpoch, "workflow \(workflowID) is owned under epoch \(workflow.epoch), newer than this writer's \(epoch): another coordinator took it over")
            }
            let last = workflow.journal.lastSequence
            guard last == expectedSequence else {
                throw WorkflowStoreError(.sequenceConflict, "workflow \(workflowID)'s journal ends at event \(last), not \(expectedSequence) as this writer read it: read it again")
            }
            var lines: [WorkflowProjection.Line] = []
            for event in events {
                let before = workflow.journal
                try Self.apply(event, sequence: workflow.journal.nextSequence, epoch: epoch, at: now, to: &workflow, id: workflowID)
                lines += Self.lines(for: event, before: before, after: workflow.journal, workflowID: workflowID)
            }
            workflow.epoch = epoch
            state.workflows[workflowID] = workflow
            Self.add(lines, of: workflowID, at: now, to: &state)
            return Array(workflow.journal.entries.suffix(events.count))
        }
    }

    /// Applies one event to a workflow's journal and the notes beside it.
    private static func apply(_ event: WorkflowEvent, sequence: Int64, epoch: Int64, at now: Date, to workflow: inout Workflow, id: String) throws {
        let status = workflow.journal.status
        do {
            try workflow.journal.apply(JournalEntry(sequence: sequence, epoch: epoch, recordedAt: now, event: event))
        } catch {
            throw WorkflowStoreError(.unreadable, "workflow \(id): \(error). The writer broke the journal's rules")
        }
        switch event {
        case .activityScheduled(let scheduled):
            workflow.delivery[scheduled.position] = Delivery(scheduledAt: now)
        case .activityCompleted(let position, let attempt, _):
            workflow.delivery[position]?.attempt = attempt
            workflow.delivery[position]?.lastHeardAt = now
        case .activityFailed(let position, let attempt, let failure), .activityParked(let position, let attempt, let failure):
            workflow.delivery[position]?.attempt = attempt
            workflow.delivery[position]?.error = failure
            workflow.delivery[position]?.lastHeardAt = now
        case .activityTimedOut(let position, let failure):
            workflow.delivery[position]?.error = failure
            workflow.delivery[position]?.lastHeardAt = now
        case .activityResumed(let position, _, let resetAttempts):
            // Under its new key: a new message id, sent from scratch.
            let attempt = resetAttempts ? 0 : workflow.delivery[position]?.attempt ?? 0
            let heartbeat = resetAttempts ? nil : workflow.delivery[position]?.heartbeat
            workflow.delivery[position] = Delivery(attempt: attempt, scheduledAt: workflow.delivery[position]?.scheduledAt ?? now, heartbeat: heartbeat)
        case .cancelRequested:
            workflow.updatedAt = now
        case .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowContinuedAsNew, .workflowReset:
            workflow.finishedAt = now
        case .markerRecorded(_, WorkflowProjection.searchAttributesMarker, let value):
            for (key, change) in (try? WorkflowProjection.searchAttributeChanges(value)) ?? [:] { workflow.search[key] = change }
        case .markerRecorded(_, WorkflowProjection.memoMarker, let value):
            // A JSON merge patch (RFC 7396) of the top level, as SQLite's json_patch does it.
            var memo = workflow.memo ?? [:]
            if case .object(let patch)? = try? value.decode(JSONValue.self) {
                for (key, change) in patch {
                    if change == .null { memo[key] = nil } else { memo[key] = change }
                }
            }
            workflow.memo = memo
        default:
            break
        }
        if workflow.journal.status != status { workflow.updatedAt = now }
    }

    /// The history lines an event adds, with the line for a change of status it caused.
    private static func lines(for event: WorkflowEvent, before: WorkflowJournal, after: WorkflowJournal, workflowID: String) -> [WorkflowProjection.Line] {
        var stepKey: String?
        var activity: String?
        if let position = event.position, event.kind != "activity_scheduled" {
            switch after.commands[safe: position] {
            case .activity(let scheduled, _)?: (stepKey, activity) = (scheduled.stepKey, scheduled.activity)
            case .timer(let key, _, _)?: stepKey = key
            case .child(let child, _)?: stepKey = child.workflowID
            default: break
            }
        }
        var lines = WorkflowProjection.lines(for: event, stepKey: stepKey)
        if let line = WorkflowProjection.statusLine(
            from: before.status, to: after.status, reason: after.parkedReason(workflowID: workflowID), cause: event, stepKey: stepKey, activity: activity
        ) {
            lines.append(line)
        }
        return lines
    }

    private static func add(_ lines: [WorkflowProjection.Line], of workflowID: String, at now: Date, to state: inout State) {
        for line in lines {
            state.history.append((Int64(state.history.count + 1), workflowID, HistoryEvent(at: now, kind: line.kind, stepKey: line.stepKey, detail: line.detail)))
        }
    }

    public func journal(workflowID: String, after: Int64, limit: Int) async throws -> [JournalEntry] {
        state.withLock { state in
            Array((state.workflows[workflowID]?.journal.entries ?? []).lazy.filter { $0.sequence > after }.prefix(max(0, limit)))
        }
    }

    public func dueTimers(until: Date, limit: Int) async throws -> [DueTimer] {
        state.withLock { state in
            var due: [DueTimer] = []
            for (id, workflow) in state.workflows where !workflow.journal.status.isFinished {
                for (position, command) in workflow.journal.commands.enumerated() {
                    if case .timer(let key, let fireAt, fired: false) = command, fireAt <= until {
                        due.append(DueTimer(workflowID: id, position: position, key: key, fireAt: fireAt))
                    }
                }
            }
            return Array(due.sorted { ($0.fireAt, $0.workflowID, $0.position) < ($1.fireAt, $1.workflowID, $1.position) }.prefix(max(0, limit)))
        }
    }

    // MARK: Runs

    public func startNextRun(
        of workflowID: String, closing: WorkflowEvent?, journal: [JournalEntry], childrenFrom: Int, requestID: String?, expectedSequence: Int64, epoch: Int64, at now: Date
    ) async throws -> WorkflowRecord {
        try state.withLock { state in
            guard var old = state.workflows[workflowID] else { throw WorkflowStoreError(.noSuchWorkflow, "there is no workflow \(workflowID) to start a next run of") }
            guard epoch >= old.epoch else {
                throw WorkflowStoreError(.staleEpoch, "workflow \(workflowID) is owned under epoch \(old.epoch), newer than this writer's \(epoch): another coordinator took it over")
            }
            guard old.journal.lastSequence == expectedSequence else {
                throw WorkflowStoreError(.sequenceConflict, "workflow \(workflowID)'s journal ends at event \(old.journal.lastSequence), not \(expectedSequence) as this writer read it: read it again")
            }
            guard closing?.isTerminal ?? true, case .workflowStarted(let name, let input)? = journal.first?.event else {
                throw WorkflowStoreError(.unreadable, "the next run of \(workflowID) must follow an ending event and start with workflow_started: this writer broke the journal's rules")
            }
            let archived = WorkflowRecord.runID(of: workflowID, run: old.run)
            guard state.workflows[archived] == nil else {
                throw WorkflowStoreError(.unavailable, "cannot keep run \(old.run) of \(workflowID) as \(archived): a workflow has that id")
            }
            // The run that ends keeps everything of its own under its own id.
            let endedBefore = old.journal.status
            var closingLines: [WorkflowProjection.Line] = []
            if let closing {
                let before = old.journal
                try Self.apply(closing, sequence: old.journal.nextSequence, epoch: epoch, at: now, to: &old, id: workflowID)
                closingLines = Self.lines(for: closing, before: before, after: old.journal, workflowID: workflowID)
            }
            var next = Workflow(
                name: name, input: input, startedAt: now, updatedAt: now, traceContext: old.traceContext, parent: old.parent, epoch: epoch,
                recipients: old.recipients, search: old.search, memo: old.memo, run: old.run + 1, chain: workflowID, runRequest: requestID
            )
            old.epoch = epoch
            old.parent = nil
            old.recipients = []
            old.chain = workflowID
            state.workflows[archived] = old
            Self.add(closingLines, of: workflowID, at: now, to: &state)
            state.history = state.history.map { $0.workflowID == workflowID ? ($0.sequence, archived, $0.event) : $0 }
            for (id, child) in state.workflows where child.parent?.workflowID == workflowID && child.parent!.position >= childrenFrom {
                state.workflows[id]?.parent?.workflowID = archived
            }
            // The next run, under the workflow's id, its journal projected as if appended.
            var lines: [WorkflowProjection.Line] = []
            for entry in journal {
                let before = next.journal
                try Self.apply(entry.event, sequence: entry.sequence, epoch: epoch, at: entry.recordedAt, to: &next, id: workflowID)
                if case .workflowStarted = entry.event {
                    lines.append(WorkflowProjection.Line(kind: .workflowStarted, stepKey: nil, detail: "run \(next.run), after run \(old.run) (\(archived)) \(WorkflowProjection.runEnd(closing, status: endedBefore))"))
                } else {
                    lines += Self.lines(for: entry.event, before: before, after: next.journal, workflowID: workflowID)
                }
            }
            state.workflows[workflowID] = next
            Self.add(lines, of: workflowID, at: now, to: &state)
            return Self.record(workflowID, next)
        }
    }

    public func runs(of workflowID: String) async throws -> [WorkflowSummary] {
        state.withLock { state in
            let chain = state.workflows[workflowID]?.chain ?? workflowID
            return state.workflows.filter { $0.key == chain || $0.value.chain == chain }.map { Self.record($0.key, $0.value) }
                .sorted { $0.run < $1.run }.map(Self.summary)
        }
    }

    private static func summary(_ record: WorkflowRecord) -> WorkflowSummary {
        WorkflowSummary(
            id: record.id, name: record.name, status: record.status, parkedReason: record.parkedReason, cancelRequested: record.cancelRequested,
            startedAt: record.startedAt, updatedAt: record.updatedAt, finishedAt: record.finishedAt, runOf: record.chainID == record.id ? nil : record.chainID
        )
    }

    // MARK: Projections

    private static func record(_ id: String, _ workflow: Workflow) -> WorkflowRecord {
        let journal = workflow.journal
        var output: JSONText?
        var error: ActivityFailure?
        switch journal.ending {
        case .workflowCompleted(let value)?: output = value
        case .workflowFailed(let failure)?, .workflowCancelled(let failure)?: error = failure
        case .workflowReset(let position, let reason)?: error = .cancelled("reset to before command \(position): \(reason)")
        default: break
        }
        return WorkflowRecord(
            id: id, name: workflow.name, status: journal.status, input: workflow.input, output: output, error: error,
            parkedReason: journal.parkedReason(workflowID: id), cancelRequested: journal.cancelRequested, startedAt: workflow.startedAt,
            updatedAt: workflow.updatedAt, finishedAt: workflow.finishedAt, traceContext: workflow.traceContext,
            parent: workflow.parent, run: workflow.run, chainID: workflow.chain, runRequestID: workflow.runRequest
        )
    }

    private static func steps(_ id: String, _ workflow: Workflow) -> [StepRecord] {
        workflow.journal.commands.enumerated().compactMap { position, command in
            guard case .activity(let scheduled, let state) = command else { return nil }
            let delivery = workflow.delivery[position] ?? Delivery(scheduledAt: workflow.startedAt)
            let ended = workflow.journal.ending != nil
            let paused = workflow.journal.pausedActivities[position] != nil
            let (status, result): (StepStatus, JSONText?) = switch state {
            case .waiting where ended, .parked where ended: (.cancelled, nil)
            case .waiting where paused, .parked where paused: (.paused, nil)
            case .waiting: (.scheduled, nil)
            case .completed(let output): (.completed, output)
            case .failed: (.failed, nil)
            case .parked: (.parked, nil)
            }
            let error = status == .cancelled ? WorkflowProjection.abandonedStepError(workflow.journal.status) : delivery.error
            return StepRecord(
                messageID: "\(id)/\(scheduled.stepKey)", workflowID: id, stepKey: scheduled.stepKey, activity: scheduled.activity, queue: scheduled.queue,
                input: scheduled.input, options: scheduled.options, status: status, sends: delivery.sends, scheduledAt: delivery.scheduledAt,
                sentAt: delivery.sentAt, lastHeardAt: delivery.lastHeardAt, attempt: delivery.attempt, result: result, error: error, heartbeat: delivery.heartbeat
            )
        }
    }

    public func workflow(id: String) async throws -> WorkflowRecord? {
        state.withLock { state in state.workflows[id].map { Self.record(id, $0) } }
    }

    public func workflows(matching filter: WorkflowFilter, after cursor: WorkflowCursor?, limit: Int) async throws -> [WorkflowSummary] {
        let matching = state.withLock { state in
            state.workflows.filter { filter.matches($0.value.search) }.map { Self.record($0.key, $0.value) }.filter { filter.matches($0) }
        }
        return
            matching
            .filter { record in cursor.map { record.startedAt < $0.startedAt || (record.startedAt == $0.startedAt && record.id > $0.id) } ?? true }
            .sorted { ($1.startedAt, $0.id) < ($0.startedAt, $1.id) }
            .prefix(max(0, limit))
            .map(Self.summary)
    }

    public func countWorkflows(matching filter: WorkflowFilter) async throws -> Int {
        state.withLock { state in state.workflows.lazy.filter { filter.matches($0.value.search) }.map { Self.record($0.key, $0.value) }.filter { filter.matches($0) }.count }
    }

    public func unfinishedWorkflows() async throws -> [WorkflowRecord] {
        state.withLock { state in
            state.workflows.map { Self.record($0.key, $0.value) }.filter { !$0.status.isFinished }.sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
        }
    }

    public func step(messageID: String) async throws -> StepRecord? {
        guard let slash = messageID.lastIndex(of: "/") else { return nil }
        let id = String(messageID[..<slash])
        return state.withLock { state in state.workflows[id].flatMap { Self.steps(id, $0).first { $0.messageID == messageID } } }
    }

    public func steps(workflowID: String) async throws -> [StepRecord] {
        state.withLock { state in state.workflows[workflowID].map { Self.steps(workflowID, $0) } ?? [] }
    }

    public func history(workflowID: String, after: Int64?, limit: Int) async throws -> [SequencedHistoryEvent] {
        state.withLock { state in
            Array(
                state.history.lazy.filter { $0.workflowID == workflowID && $0.sequence > (after ?? 0) }.prefix(max(0, limit))
                    .map { SequencedHistoryEvent(sequence: $0.sequence, event: $0.event, kindName: $0.event.kind.rawValue) }
            )
        }
    }

    public func note(_ note: DeliveryNote, at now: Date) async throws {
        state.withLock { state in
            let workflowID: String
            var stepKey: String?
            switch note {
            case .sent(let messageID, _), .heard(let messageID, _, _):
                guard let slash = messageID.lastIndex(of: "/") else { return }
                workflowID = String(messageID[..<slash])
                let key = String(messageID[messageID.index(after: slash)...])
                guard var workflow = state.workflows[workflowID], let position = workflow.journal.position(ofStep: key),
                    case .activity(_, let stepState) = workflow.journal.commands[position]
                else { return }
                stepKey = key
                if case .sent = note {
                    workflow.delivery[position]?.sends += 1
                    workflow.delivery[position]?.sentAt = now
                    workflow.delivery[position]?.lastHeardAt = nil
                } else if case .heard(_, let attempt, let details) = note {
                    guard !stepState.isFinal, workflow.journal.pausedActivities[position] == nil else { return }
                    workflow.delivery[position]?.attempt = attempt
                    workflow.delivery[position]?.lastHeardAt = now
                    if let details { workflow.delivery[position]?.heartbeat = details }
                }
                state.workflows[workflowID] = workflow
            case .resumed(let id, _):
                workflowID = id
            }
            if let line = WorkflowProjection.line(for: note, stepKey: stepKey) { Self.add([line], of: workflowID, at: now, to: &state) }
        }
    }

    // MARK: Results owed

    public func recipients(workflowID: String) async throws -> [ResultRecipient] {
        state.withLock { state in state.workflows[workflowID]?.recipients ?? [] }
    }

    public func finishedWithRecipients() async throws -> [WorkflowRecord] {
        state.withLock { state in
            state.workflows.filter { $0.value.journal.status.isFinished && !$0.value.recipients.isEmpty }.map { Self.record($0.key, $0.value) }
        }
    }

    public func removeRecipient(workflowID: String, _ recipient: ResultRecipient) async throws {
        state.withLock { state in state.workflows[workflowID]?.recipients.removeAll { $0 == recipient } }
    }

    // MARK: Schedules

    public func upsertSchedule(_ schedule: ScheduleRecord) async throws {
        state.withLock { state in
            var schedule = schedule
            if let existing = state.schedules[schedule.name] {
                schedule.lastRunAt = existing.lastRunAt
                schedule.runs = existing.runs
                schedule.lastWorkflowID = existing.lastWorkflowID
                schedule.buffered = existing.buffered
                schedule.skipped = existing.skipped
            }
            state.schedules[schedule.name] = schedule
        }
    }

    public func removeSchedule(name: String) async throws -> Bool {
        state.withLock { state in state.schedules.removeValue(forKey: name) != nil }
    }

    public func schedules() async throws -> [ScheduleRecord] {
        state.withLock { state in state.schedules.values.sorted { $0.name < $1.name } }
    }

    public func attributes(workflowID: String) async throws -> WorkflowAttributes {
        try state.withLock { state in
            guard let workflow = state.workflows[workflowID] else { return WorkflowAttributes() }
            return WorkflowAttributes(search: workflow.search, memo: try workflow.memo.map { try JSONText(encoding: JSONValue.object($0)) })
        }
    }

    public func recordScheduleState(_ schedule: ScheduleRecord) async throws {
        state.withLock { state in
            guard var stored = state.schedules[schedule.name] else { return }
            stored.nextRunAt = schedule.nextRunAt
            stored.lastRunAt = schedule.lastRunAt
            stored.runs = schedule.runs
            stored.lastWorkflowID = schedule.lastWorkflowID
            stored.buffered = schedule.buffered
            stored.skipped = schedule.skipped
            state.schedules[schedule.name] = stored
        }
    }

    public func setSchedulePaused(name: String, paused: Bool, note: String?) async throws -> ScheduleRecord? {
        state.withLock { state in
            state.schedules[name]?.paused = paused
            state.schedules[name]?.pauseNote = paused ? note : nil
            return state.schedules[name]
        }
    }
}

extension WorkflowFilter {
    /// Whether a workflow passes this filter; the same test the SQL of a store makes.
    /// Whether a workflow with these search attributes passes the filter's attribute
    /// clauses; the same test the SQL of a store makes.
    func matches(_ search: [String: SearchAttribute]) -> Bool {
        attributes.allSatisfy { clause in
            let found = search[clause.key]
            let order: ComparisonResult? = switch (found, clause.value) {
            case (.text(let have)?, .text(let want)): have < want ? .orderedAscending : have == want ? .orderedSame : .orderedDescending
            case (.number(let have)?, .number(let want)): have < want ? .orderedAscending : have == want ? .orderedSame : .orderedDescending
            case (.bool(let have)?, .bool(let want)): have == want ? .orderedSame : (String(have) < String(want) ? .orderedAscending : .orderedDescending)
            default: nil
            }
            switch clause.comparison {
            case .equal: return order == .orderedSame
            case .notEqual: return order != .orderedSame
            case .less: return order == .orderedAscending
            case .lessOrEqual: return order == .orderedAscending || order == .orderedSame
            case .greater: return order == .orderedDescending
            case .greaterOrEqual: return order == .orderedDescending || order == .orderedSame
            }
        }
    }

    func matches(_ record: WorkflowRecord) -> Bool {
        (statuses.isEmpty || statuses.contains(record.status)) && (name.map { $0 == record.name } ?? true)
            && (startedAfter.map { record.startedAt > $0 } ?? true) && (startedBefore.map { record.startedAt < $0 } ?? true)
            && (idContains.map { $0.isEmpty || record.id.contains($0) } ?? true) && (idPrefix.map { $0.isEmpty || record.id.hasPrefix($0) } ?? true)
    }
}
