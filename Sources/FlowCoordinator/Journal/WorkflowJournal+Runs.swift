import FlowCore
import Foundation

/// The journals a workflow's next run starts from: after a continue-as-new, and after an
/// operator's reset. Values in, values out, so the rules are tested without a store.
extension WorkflowJournal {
    /// The journal the run after a reset to command `position` starts from: this journal
    /// cut back to just before that command was issued, numbered from 1.
    ///
    /// - Everything the workflow's code saw before the cut is kept as it was (commands,
    ///   their answers, markers, signals, updates), so the next run replays to the cut and
    ///   issues command `position` and what follows again.
    /// - An answer that came after the cut to a command before it is left out: that step
    ///   is waited on again, and its worker answers from the result it kept under the same
    ///   message id.
    /// - Signals received after the cut are kept, after the rest, unless `keepSignals` is
    ///   false; nothing else after the cut is.
    /// - What operators and the engine recorded rather than the workflow (cancel requests,
    ///   pauses, divergence) and the run's end are left out: the next run starts running.
    ///
    /// `position` may be any command's position, or the number of commands to keep them all
    /// and run the code on from its last one.
    public func resetJournal(to position: Int, keepSignals: Bool, epoch: Int64) throws(RunError) -> [JournalEntry] {
        guard started != nil else { throw RunError("the journal has no start to reset to") }
        guard (0...commands.count).contains(position) else {
            throw RunError(
                commands.isEmpty
                    ? "there is no command \(position) to reset to: the workflow issued none yet (reset to 0 to run it from its start)"
                    : "there is no command \(position) to reset to: the workflow issued commands 0 to \(commands.count - 1) (reset to \(commands.count) to keep them all)"
            )
        }
        var kept: [(WorkflowEvent, Date)] = []
        var carried: [(WorkflowEvent, Date)] = []
        var cut = false
        for entry in entries {
            let event = entry.event
            if !cut, event.opensCommand, event.position == position { cut = true }
            switch event {
            case .cancelRequested, .workflowPaused, .workflowUnpaused, .replayDiverged, .replayRecovered:
                continue
            case _ where event.isTerminal:
                continue
            case .signalReceived where cut:
                if keepSignals { carried.append((event, entry.recordedAt)) }
            default:
                if !cut { kept.append((event, entry.recordedAt)) }
            }
        }
        return (kept + carried).enumerated().map { offset, item in
            JournalEntry(sequence: Int64(offset) + 1, epoch: epoch, recordedAt: item.1, event: item.0)
        }
    }

    /// The journal the run after a continue-as-new starts from: its start with `input`,
    /// then the signals the run that continued did not take, which are the next run's:
    /// those recorded after the code decided (`after` its journal's last sequence then),
    /// and those its code had not received (`unreceived` ids).
    public func continuedJournal(input: JSONText, carrying unreceived: Set<String>, after decided: Int64, epoch: Int64, at now: Date) throws(RunError) -> [JournalEntry] {
        guard let started else { throw RunError("the journal has no start to continue from") }
        var events: [(WorkflowEvent, Date)] = [(.workflowStarted(name: started.name, input: input), now)]
        for entry in entries {
            guard case .signalReceived(let id, _, _) = entry.event, entry.sequence > decided || unreceived.contains(id) else { continue }
            events.append((entry.event, entry.recordedAt))
        }
        return events.enumerated().map { offset, item in
            JournalEntry(sequence: Int64(offset) + 1, epoch: epoch, recordedAt: item.1, event: item.0)
        }
    }
}

extension WorkflowEvent {
    /// Whether the event issues a command (takes the next position).
    var opensCommand: Bool {
        switch self {
        case .activityScheduled, .timerStarted, .markerRecorded, .childScheduled: true
        default: false
        }
    }
}

/// A next run that cannot start from this journal, and why.
public struct RunError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
