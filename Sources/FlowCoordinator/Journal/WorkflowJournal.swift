import FlowCore
import Foundation

/// A workflow's journal as a value: its entries, and the state they add up to. It is the
/// one place that knows which event may follow which; it does no I/O, so the rules are
/// tested on their own and the replayer, the stores and the tools all use the same ones.
///
/// `apply` checks an entry against what came before and refuses, changing nothing, one
/// that breaks the journal: a gap or repeat in the numbering, an event before the start or
/// after the end, an answer to a command that was never issued or was already answered,
/// a command out of position.
public struct WorkflowJournal: Sendable, Equatable {
    /// Where one command stands.
    public enum Command: Sendable, Equatable {
        case activity(WorkflowEvent.ScheduledActivity, ActivityState)
        case timer(key: String, fireAt: Date, fired: Bool)
        case marker(name: String, value: JSONText)
        case child(WorkflowEvent.ScheduledChild, ChildState)
    }

    /// Where a child workflow command stands.
    public enum ChildState: Sendable, Equatable {
        case waiting
        case completed(JSONText)
        case failed(ActivityFailure)
    }

    /// Where an activity command stands.
    public enum ActivityState: Sendable, Equatable {
        case waiting
        case completed(JSONText)
        case failed(ActivityFailure, timedOut: Bool)
        /// Dead-lettered; a replay's final reply ends it.
        case parked(ActivityFailure)

        var isFinal: Bool {
            switch self {
            case .completed, .failed: true
            case .waiting, .parked: false
            }
        }
    }

    public private(set) var entries: [JournalEntry] = []
    /// The workflow's name and input, once started.
    public private(set) var started: (name: String, input: JSONText)?
    /// Every command issued so far, by position.
    public private(set) var commands: [Command] = []
    public private(set) var cancelRequested = false
    /// Paused by an operator: why, until unpaused.
    public private(set) var pausedBecause: String?
    /// The activities an operator paused, by position, with why.
    public private(set) var pausedActivities: [Int: String] = [:]
    /// Why the workflow's code last failed to replay this journal, until code that
    /// replays it took the workflow up again.
    public private(set) var divergence: String?
    /// The ids of the signals recorded, so that one sent again is known.
    public private(set) var signalIDs: Set<String> = []
    /// The updates accepted, by id, with their result once their handler ran.
    public private(set) var updates: [String: UpdateState] = [:]
    /// The event that ended the workflow, if one has.
    public private(set) var ending: WorkflowEvent?

    public init() {}

    /// A journal of `entries`, each checked in turn.
    public init(_ entries: some Sequence<JournalEntry>) throws(JournalError) {
        for entry in entries { try apply(entry) }
    }

    /// The sequence number of the last entry: 0 for an empty journal.
    public var lastSequence: Int64 { entries.last?.sequence ?? 0 }
    /// The sequence number the next entry must carry.
    public var nextSequence: Int64 { lastSequence + 1 }
    /// The position the next command takes.
    public var nextPosition: Int { commands.count }

    /// The workflow's status as the journal has it.
    public var status: WorkflowStatus {
        switch ending {
        case .workflowCompleted?: return .completed
        case .workflowFailed?: return .failed
        case .workflowCancelled?: return .cancelled
        case .workflowContinuedAsNew?: return .continuedAsNew
        case .workflowReset?: return .reset
        default:
            return divergence != nil || firstParked != nil ? .parked : .running
        }
    }

    /// Why the workflow waits, when it is parked: its code's divergence, else its first
    /// dead-lettered step. `workflowID` names the step's message.
    public func parkedReason(workflowID: String) -> String? {
        guard ending == nil else { return nil }
        if let divergence { return divergence }
        guard let (scheduled, failure) = firstParked else { return nil }
        return WorkflowProjection.parkedReason(workflowID: workflowID, activity: scheduled.activity, stepKey: scheduled.stepKey, failure: failure)
    }

    /// A paused step is the operator's, not the dead-letter queue's: it parks nothing.
    private var firstParked: (WorkflowEvent.ScheduledActivity, ActivityFailure)? {
        for (position, command) in commands.enumerated() where pausedActivities[position] == nil {
            if case .activity(let scheduled, .parked(let failure)) = command { return (scheduled, failure) }
        }
        return nil
    }

    /// What an answer to a command (an activity's outcome, a timer's fire) does to this
    /// journal, decided by the same rules `apply` holds.
    public func answering(_ event: WorkflowEvent) -> Answer {
        var next = self
        do {
            try next.apply(JournalEntry(sequence: nextSequence, epoch: entries.last?.epoch ?? 0, recordedAt: .distantPast, event: event))
            return .record
        } catch {
            switch error.code {
            case .alreadyAnswered: return .duplicate
            case .afterEnd:
                // The workflow ended: a repeat of an answer it had is a duplicate; any other
                // came too late to matter.
                if let position = event.position, case .activity(_, let state)? = commands[safe: position], state.isFinal { return .duplicate }
                if let position = event.position, case .timer(_, _, fired: true)? = commands[safe: position] { return .duplicate }
                if let position = event.position, case .child(_, let state)? = commands[safe: position], state != .waiting { return .duplicate }
                return .stale
            default: return .stale
            }
        }
    }

    /// What an answer does (``answering(_:)``).
    public enum Answer: Sendable, Equatable {
        /// It is new: record it.
        case record
        /// The command already has this kind of answer: a repeat.
        case duplicate
        /// It answers no command waiting in a running workflow.
        case stale
    }

    /// The position of the activity whose step has `stepKey`.
    public func position(ofStep stepKey: String) -> Int? {
        // Keys written since the journal end in `@<position>`; older ones are found by search.
        if let at = stepKey.lastIndex(of: "@"), let position = Int(stepKey[stepKey.index(after: at)...]),
            case .activity(let scheduled, _)? = commands[safe: position], scheduled.stepKey == stepKey
        {
            return position
        }
        return commands.firstIndex { if case .activity(let scheduled, _) = $0 { scheduled.stepKey == stepKey } else { false } }
    }

    /// Appends an entry after checking it against the journal so far; on a violation
    /// nothing changes.
    public mutating func apply(_ entry: JournalEntry) throws(JournalError) {
        let event = entry.event
        guard entry.sequence == nextSequence else {
            throw JournalError(.sequenceGap, at: entry, "carries sequence number \(entry.sequence) where \(nextSequence) comes next")
        }
        if ending != nil {
            throw JournalError(.afterEnd, at: entry, "follows the workflow's end (\(ending!.kind))")
        }
        if started == nil, event.kind != "workflow_started" {
            throw JournalError(.beforeStart, at: entry, "comes before the workflow started")
        }
        switch event {
        case .workflowStarted(let name, let input):
            guard started == nil else { throw JournalError(.duplicateStart, at: entry, "starts a workflow that has started") }
            started = (name, input)
        case .activityScheduled(let scheduled):
            try requireNext(scheduled.position, entry)
            commands.append(.activity(scheduled, .waiting))
        case .timerStarted(let position, let key, let fireAt):
            try requireNext(position, entry)
            commands.append(.timer(key: key, fireAt: fireAt, fired: false))
        case .markerRecorded(let position, let name, let value):
            try requireNext(position, entry)
            commands.append(.marker(name: name, value: value))
        case .activityCompleted(let position, _, let output):
            try answer(position, entry, with: .completed(output))
        case .activityFailed(let position, _, let failure):
            try answer(position, entry, with: .failed(failure, timedOut: false))
        case .activityTimedOut(let position, let failure):
            try answer(position, entry, with: .failed(failure, timedOut: true))
        case .activityParked(let position, _, let failure):
            try answer(position, entry, with: .parked(failure))
        case .activityPaused(let position, let reason):
            guard case .activity(let scheduled, let state)? = commands[safe: position] else {
                throw JournalError(.unknownCommand, at: entry, "pauses position \(position), which is no activity")
            }
            guard !state.isFinal else { throw JournalError(.alreadyAnswered, at: entry, "pauses \(scheduled.activity) at position \(position), which has its outcome") }
            guard pausedActivities[position] == nil else { throw JournalError(.alreadyAnswered, at: entry, "pauses \(scheduled.activity) at position \(position), which is paused") }
            pausedActivities[position] = reason
        case .activityResumed(let position, let stepKey, _):
            guard case .activity(var scheduled, let state)? = commands[safe: position] else {
                throw JournalError(.unknownCommand, at: entry, "sends position \(position) again, which is no activity")
            }
            guard !state.isFinal else { throw JournalError(.alreadyAnswered, at: entry, "sends \(scheduled.activity) at position \(position) again, which has its outcome") }
            guard stepKey != scheduled.stepKey else { throw JournalError(.alreadyAnswered, at: entry, "sends \(scheduled.activity) at position \(position) again under the key it has") }
            scheduled.stepKey = stepKey
            commands[position] = .activity(scheduled, .waiting)
            pausedActivities[position] = nil
        case .timerFired(let position):
            guard commands.indices.contains(position), case .timer(let key, let fireAt, let fired) = commands[position] else {
                throw JournalError(.unknownCommand, at: entry, "fires position \(position), which is no timer")
            }
            guard !fired else { throw JournalError(.alreadyAnswered, at: entry, "fires timer \(key) at position \(position) again") }
            commands[position] = .timer(key: key, fireAt: fireAt, fired: true)
        case .childScheduled(let child):
            try requireNext(child.position, entry)
            commands.append(.child(child, .waiting))
        case .childCompleted(let position, let output):
            try answerChild(position, entry, with: .completed(output))
        case .childFailed(let position, let failure):
            try answerChild(position, entry, with: .failed(failure))
        case .cancelRequested:
            cancelRequested = true
        case .workflowPaused(let reason):
            guard pausedBecause == nil else { throw JournalError(.alreadyAnswered, at: entry, "pauses a workflow that is paused") }
            pausedBecause = reason
        case .workflowUnpaused:
            guard pausedBecause != nil else { throw JournalError(.alreadyAnswered, at: entry, "unpauses a workflow that is not paused") }
            pausedBecause = nil
        case .signalReceived(let id, _, _):
            guard !signalIDs.contains(id) else { throw JournalError(.duplicateSignal, at: entry, "records signal \(id) a second time") }
            signalIDs.insert(id)
        case .updateAccepted(let id, _, _):
            guard updates[id] == nil else { throw JournalError(.duplicateSignal, at: entry, "accepts update \(id) a second time") }
            updates[id] = .accepted
        case .updateCompleted(let id, let output, let failure):
            guard case .accepted? = updates[id] else { throw JournalError(.unknownCommand, at: entry, "completes update \(id), which was not accepted or has completed") }
            updates[id] = .completed(UpdateResult(output: output, failure: failure))
        case .replayDiverged(let reason):
            divergence = reason
        case .replayRecovered:
            guard divergence != nil else { throw JournalError(.unknownCommand, at: entry, "recovers a replay that had not diverged") }
            divergence = nil
        case .workflowCompleted, .workflowFailed, .workflowCancelled, .workflowContinuedAsNew, .workflowReset:
            ending = event
        case .unrecognized(let kind, _):
            throw JournalError(.unrecognizedEvent, at: entry, "is of kind '\(kind)', which this build does not know: read this journal with the build that wrote it")
        }
        entries.append(entry)
    }

    private func requireNext(_ position: Int, _ entry: JournalEntry) throws(JournalError) {
        guard position == nextPosition else {
            throw JournalError(.positionOutOfOrder, at: entry, "issues a command at position \(position) where \(nextPosition) comes next")
        }
    }

    private mutating func answerChild(_ position: Int, _ entry: JournalEntry, with state: ChildState) throws(JournalError) {
        guard case .child(let child, let current)? = commands[safe: position] else {
            throw JournalError(.unknownCommand, at: entry, "answers position \(position), which is no child workflow")
        }
        guard current == .waiting else {
            throw JournalError(.alreadyAnswered, at: entry, "answers child \(child.workflowID) at position \(position), which already has its outcome")
        }
        commands[position] = .child(child, state)
    }

    /// The child workflows still running, which this workflow's end applies its
    /// parent-close policy to.
    public var openChildren: [WorkflowEvent.ScheduledChild] {
        commands.compactMap { if case .child(let child, .waiting) = $0 { child } else { nil } }
    }

    private mutating func answer(_ position: Int, _ entry: JournalEntry, with state: ActivityState) throws(JournalError) {
        guard commands.indices.contains(position), case .activity(let scheduled, let current) = commands[position] else {
            throw JournalError(.unknownCommand, at: entry, "answers position \(position), which is no activity")
        }
        // A paused step takes only a completion (its attempt finished before it stopped);
        // a failure, or a park, is the stop the pause asked for, and waits for the resume.
        let completes = if case .completed = state { true } else { false }
        if pausedActivities[position] != nil, !completes {
            throw JournalError(.activityPaused, at: entry, "answers \(scheduled.activity) at position \(position), which is paused: only a completion is taken")
        }
        switch (current, state) {
        case (.waiting, _), (.parked, .completed), (.parked, .failed):
            commands[position] = .activity(scheduled, state)
            if completes { pausedActivities[position] = nil }
        default:
            throw JournalError(.alreadyAnswered, at: entry, "answers \(scheduled.activity) at position \(position), which already has its outcome")
        }
    }
}

/// Where an update stands in a journal.
public enum UpdateState: Sendable, Equatable {
    /// Accepted; its handler's result is not recorded (a crash came between).
    case accepted
    case completed(UpdateResult)
}

/// What an update's handler returned or threw.
public struct UpdateResult: Sendable, Equatable {
    public var output: JSONText?
    public var failure: ActivityFailure?

    public init(output: JSONText?, failure: ActivityFailure?) {
        self.output = output
        self.failure = failure
    }
}

extension WorkflowJournal {
    public static func == (left: WorkflowJournal, right: WorkflowJournal) -> Bool { left.entries == right.entries }
}

/// A journal entry that cannot follow the ones before it.
public struct JournalError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of violation, for programs.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String { case sequenceGap, beforeStart, duplicateStart, afterEnd, positionOutOfOrder, unknownCommand, alreadyAnswered, duplicateSignal, unrecognizedEvent, activityPaused }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The entry's sequence number is not the next one.
        public static let sequenceGap = Code(.sequenceGap)
        /// An event other than the start comes first.
        public static let beforeStart = Code(.beforeStart)
        public static let duplicateStart = Code(.duplicateStart)
        /// Something follows the workflow's end.
        public static let afterEnd = Code(.afterEnd)
        /// A command does not take the next position.
        public static let positionOutOfOrder = Code(.positionOutOfOrder)
        /// An answer names a position that holds no such command.
        public static let unknownCommand = Code(.unknownCommand)
        /// An answer to a command that already has its outcome.
        public static let alreadyAnswered = Code(.alreadyAnswered)
        /// A signal whose id the journal has.
        public static let duplicateSignal = Code(.duplicateSignal)
        /// An event of a kind this build does not know.
        public static let unrecognizedEvent = Code(.unrecognizedEvent)
        /// A failure of an activity an operator paused: the stop the pause asked for.
        public static let activityPaused = Code(.activityPaused)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// The sequence number of the entry refused.
    public var sequence: Int64
    public var message: String

    init(_ code: Code, at entry: JournalEntry, _ what: String) {
        self.code = code
        self.sequence = entry.sequence
        self.message = "journal event \(entry.sequence) (\(entry.event.kind)) \(what)"
    }

    public var description: String { message }
}
