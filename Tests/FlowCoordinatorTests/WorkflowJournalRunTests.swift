import FlowCoordinator
import FlowCore
import Foundation
import Testing

/// The journals a next run starts from, as values: the rules of a reset's cut and of what
/// a continue-as-new carries.
@Suite("the journal of a next run")
struct WorkflowJournalRunTests {
    typealias J = WorkflowJournalTests

    static func signal(_ id: String) -> WorkflowEvent { .signalReceived(id: id, name: "nudge", input: J.input) }

    /// Two steps in parallel, a signal between, a pause, and the second step's answer
    /// coming after command 2 was issued.
    static let run: [WorkflowEvent] = [
        .workflowStarted(name: "counted", input: J.input),
        J.scheduled(0),
        J.scheduled(1),
        signal("early"),
        .activityCompleted(position: 0, attempt: 1, output: J.input),
        .workflowPaused(reason: "looking"),
        .workflowUnpaused,
        J.scheduled(2),
        .activityCompleted(position: 1, attempt: 1, output: J.input),
        signal("late"),
        .cancelRequested(reason: "enough"),
        .workflowCancelled(failure: .cancelled("enough")),
    ]

    @Test("a reset keeps what came before the cut, leaves out later answers and what operators recorded, and keeps later signals unless told not to")
    func cut() throws {
        let journal = try WorkflowJournal(J.entries(Self.run))
        let kept = try journal.resetJournal(to: 2, keepSignals: true, epoch: 7)
        #expect(kept.map(\.event) == [Self.run[0], Self.run[1], Self.run[2], Self.run[3], Self.run[4], Self.signal("late")])
        #expect(kept.map(\.sequence) == Array(1...6) && kept.allSatisfy { $0.epoch == 7 })
        let next = try WorkflowJournal(kept)
        #expect(next.status == .running && !next.cancelRequested && next.pausedBecause == nil)
        guard next.commands.count == 2, case .activity(_, .waiting) = next.commands[1] else {
            Issue.record("step 1 was answered after the cut: the next run waits for it again")
            return
        }
        #expect(next.nextPosition == 2, "the next run issues command 2 again")

        let dropped = try journal.resetJournal(to: 2, keepSignals: false, epoch: 7)
        #expect(dropped.map(\.event) == Array(Self.run[0...4]))
        #expect(try journal.resetJournal(to: 0, keepSignals: true, epoch: 0).map(\.event) == [Self.run[0], Self.signal("early"), Self.signal("late")])
        #expect(try journal.resetJournal(to: 3, keepSignals: true, epoch: 0).count == 8, "to the number of commands: all kept, the end left out")
    }

    @Test("a reset to a command the journal does not have is refused, saying which it has")
    func outOfRange() throws {
        let journal = try WorkflowJournal(J.entries(Self.run))
        #expect { try journal.resetJournal(to: 4, keepSignals: true, epoch: 0) } throws: { "\($0)".contains("commands 0 to 2 (reset to 3 to keep them all)") }
        #expect { try journal.resetJournal(to: -1, keepSignals: true, epoch: 0) } throws: { $0 is RunError }
        let fresh = try WorkflowJournal(J.entries([.workflowStarted(name: "counted", input: J.input)]))
        #expect { try fresh.resetJournal(to: 1, keepSignals: true, epoch: 0) } throws: { "\($0)".contains("issued none yet") }
        #expect(try fresh.resetJournal(to: 0, keepSignals: true, epoch: 0).count == 1)
    }

    @Test("a continue-as-new starts the next run with its input and the signals the code had not taken, in the order recorded")
    func carried() throws {
        let events: [WorkflowEvent] = [.workflowStarted(name: "counted", input: J.input), Self.signal("taken"), Self.signal("waiting"), J.scheduled(0), Self.signal("after")]
        let journal = try WorkflowJournal(J.entries(events))
        let next = try journal.continuedJournal(input: .emptyObject, carrying: ["waiting"], after: 4, epoch: 2, at: J.at)
        #expect(next.map(\.event) == [.workflowStarted(name: "counted", input: .emptyObject), Self.signal("waiting"), Self.signal("after")])
        #expect(next.map(\.sequence) == [1, 2, 3])
    }
}
