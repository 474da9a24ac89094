import FlowCoordinator
import FlowCore
import Foundation
import Testing

/// The journal's rules as a value, with no store: which event may follow which.
@Suite("a workflow's journal")
struct WorkflowJournalTests {
    static let at = Date(timeIntervalSince1970: 1_800_000_000)
    static let input = try! JSONText(validating: #"{"value":"a"}"#)
    static let failure = ActivityFailure(type: "NotReady", message: "not yet", retryable: false)

    static func scheduled(_ position: Int, _ activity: String = "counted_echo") -> WorkflowEvent {
        .activityScheduled(.init(position: position, activity: activity, queue: "default-queue", input: input, options: .init(), stepKey: "\(activity)#\(position)"))
    }

    /// Entries numbered from 1, in the order given.
    static func entries(_ events: [WorkflowEvent]) -> [JournalEntry] {
        events.enumerated().map { JournalEntry(sequence: Int64($0.offset + 1), epoch: 0, recordedAt: at, event: $0.element) }
    }

    static let run: [WorkflowEvent] = [
        .workflowStarted(name: "counted", input: input),
        scheduled(0),
        .activityCompleted(position: 0, attempt: 1, output: input),
        scheduled(1),
        scheduled(2),
        .activityCompleted(position: 2, attempt: 1, output: input),
        .activityParked(position: 1, attempt: 5, failure: failure),
        .timerStarted(position: 3, key: "sleep#3000ms#1", fireAt: at.addingTimeInterval(3)),
        .activityCompleted(position: 1, attempt: 6, output: input),
        .timerFired(position: 3),
        .cancelRequested(reason: "an operator asked"),
        .workflowCompleted(output: input),
    ]

    @Test("a whole run applies in order and adds up to its commands and its end")
    func wholeRun() throws {
        let journal = try WorkflowJournal(Self.entries(Self.run))
        #expect(journal.status == .completed)
        #expect(journal.nextSequence == Int64(Self.run.count + 1))
        #expect(journal.nextPosition == 4)
        #expect(journal.cancelRequested)
        #expect(journal.commands[1] == .activity(
            .init(position: 1, activity: "counted_echo", queue: "default-queue", input: Self.input, options: .init(), stepKey: "counted_echo#1"),
            .completed(Self.input)
        ))
        #expect(journal.commands[3] == .timer(key: "sleep#3000ms#1", fireAt: Self.at.addingTimeInterval(3), fired: true))
    }

    @Test("a parked activity parks the workflow until its replay's reply")
    func parkedStatus() throws {
        let parked = try WorkflowJournal(Self.entries(Array(Self.run.prefix(7))))
        #expect(parked.status == .parked)
        let unparked = try WorkflowJournal(Self.entries(Array(Self.run.prefix(9))))
        #expect(unparked.status == .running)
    }

    @Test("an entry that breaks the journal is refused with its reason, and changes nothing", arguments: [
        (WorkflowEvent.activityCompleted(position: 0, attempt: 2, output: input), JournalError.Code.alreadyAnswered),
        (.activityCompleted(position: 7, attempt: 1, output: input), .unknownCommand),
        (.timerFired(position: 0), .unknownCommand),
        (scheduled(5), .positionOutOfOrder),
        (.workflowStarted(name: "counted", input: input), .duplicateStart),
        (.unrecognized(kind: "child_started", payload: try! JSONText(validating: #"{"kind":"child_started"}"#)), .unrecognizedEvent),
    ])
    func refusals(event: WorkflowEvent, code: JournalError.Code) throws {
        var journal = try WorkflowJournal(Self.entries(Array(Self.run.prefix(3))))
        let before = journal
        let error = #expect(throws: JournalError.self) {
            try journal.apply(JournalEntry(sequence: 4, epoch: 0, recordedAt: Self.at, event: event))
        }
        #expect(error?.code == code)
        #expect(error?.message.hasPrefix("journal event 4 (\(event.kind))") == true, "\(error?.message ?? "")")
        #expect(journal == before)
    }

    @Test("numbering must go on without a gap or a repeat")
    func numbering() throws {
        var journal = try WorkflowJournal(Self.entries(Array(Self.run.prefix(2))))
        for sequence: Int64 in [2, 4] {
            let error = #expect(throws: JournalError.self) {
                try journal.apply(JournalEntry(sequence: sequence, epoch: 0, recordedAt: Self.at, event: Self.scheduled(1)))
            }
            #expect(error?.code == .sequenceGap)
        }
        try journal.apply(JournalEntry(sequence: 3, epoch: 0, recordedAt: Self.at, event: .activityCompleted(position: 0, attempt: 1, output: Self.input)))
        #expect(journal.entries.count == 3)
    }

    @Test("nothing comes before the start or after the end")
    func startAndEnd() throws {
        #expect(throws: JournalError.self) { try WorkflowJournal(Self.entries([Self.scheduled(0)])) }
        let ended = Self.entries([.workflowStarted(name: "counted", input: Self.input), .workflowFailed(failure: Self.failure), Self.scheduled(0)])
        let error = #expect(throws: JournalError.self) { try WorkflowJournal(ended) }
        #expect(error?.code == .afterEnd)
        #expect(error?.sequence == 3)
    }

    @Test("every kind of event reads back as it was written, and an unknown kind is kept whole")
    func wireForm() throws {
        var events = Self.run
        events += [
            .activityFailed(position: 4, attempt: 3, failure: Self.failure),
            .activityTimedOut(position: 5, failure: Self.failure),
            .workflowFailed(failure: Self.failure),
            .workflowCancelled(failure: .cancelled("an operator asked")),
            .markerRecorded(position: 6, name: "now", value: try JSONText(encoding: Self.at)),
            .replayDiverged(reason: "nondeterminism: at position 7 …"),
            .replayRecovered,
            .signalReceived(id: "s-1", name: "approve_training", input: Self.input),
            .updateAccepted(id: "u-1", name: "set_deadline", input: Self.input),
            .updateCompleted(id: "u-1", output: Self.input, failure: nil),
            .updateCompleted(id: "u-2", output: nil, failure: Self.failure),
        ]
        for entry in Self.entries(events) {
            let text = try FlowJSON.encodeText(entry)
            #expect(try FlowJSON.decode(JournalEntry.self, from: text) == entry, "\(text)")
        }
        let newer = #"{"kind":"child_started","name":"approve","payload":{"by":"ops"}}"#
        let read = try FlowJSON.decode(WorkflowEvent.self, from: newer)
        #expect(read.kind == "child_started")
        #expect(try FlowJSON.encodeText(read) == newer, "written back exactly as read")
        let scheduled = try FlowJSON.encodeText(Self.scheduled(0))
        #expect(scheduled.contains(#""kind":"activity_scheduled""#) && scheduled.contains(#""step_key":"counted_echo#0""#), "\(scheduled)")
    }

    @Test("an answer is new, a repeat, or for nothing waiting: the decision a store once made in SQL")
    func answers() throws {
        let parked = try WorkflowJournal(Self.entries(Array(Self.run.prefix(7))))
        #expect(parked.answering(.activityCompleted(position: 1, attempt: 6, output: Self.input)) == .record, "a replay's reply ends a park")
        #expect(parked.answering(.activityParked(position: 1, attempt: 6, failure: Self.failure)) == .duplicate, "a park repeated")
        #expect(parked.answering(.activityCompleted(position: 0, attempt: 1, output: Self.input)) == .duplicate)
        #expect(parked.answering(.activityCompleted(position: 9, attempt: 1, output: Self.input)) == .stale)
        let ended = try WorkflowJournal(Self.entries(Self.run))
        #expect(ended.answering(.activityCompleted(position: 1, attempt: 6, output: Self.input)) == .duplicate, "a repeat after the end")
        #expect(ended.answering(.timerFired(position: 3)) == .duplicate)
        let open = try WorkflowJournal(Self.entries([.workflowStarted(name: "counted", input: Self.input), Self.scheduled(0), .workflowCompleted(output: Self.input)]))
        #expect(open.answering(.activityCompleted(position: 0, attempt: 1, output: Self.input)) == .stale, "an answer that came after the end")
        #expect(parked.position(ofStep: "counted_echo#1") == 1, "a key from before positions is found by search")
    }

    @Test("a divergence parks the workflow with its reason before a parked step's, until code that replays takes it up")
    func divergence() throws {
        let started = [WorkflowEvent.workflowStarted(name: "counted", input: Self.input), Self.scheduled(0), .activityParked(position: 0, attempt: 1, failure: Self.failure)]
        var journal = try WorkflowJournal(Self.entries(started))
        #expect(journal.parkedReason(workflowID: "w")?.hasPrefix("waiting for dead-letter replay: counted_echo (message w/counted_echo#0)") == true)
        try journal.apply(JournalEntry(sequence: 4, epoch: 0, recordedAt: Self.at, event: .replayDiverged(reason: "nondeterminism: x")))
        #expect(journal.status == .parked && journal.parkedReason(workflowID: "w") == "nondeterminism: x")
        try journal.apply(JournalEntry(sequence: 5, epoch: 0, recordedAt: Self.at, event: .replayRecovered))
        #expect(journal.divergence == nil && journal.status == .parked, "its step is still parked")
        #expect(throws: JournalError.self) {
            try journal.apply(JournalEntry(sequence: 6, epoch: 0, recordedAt: Self.at, event: .replayRecovered))
        }
        try journal.apply(JournalEntry(sequence: 6, epoch: 0, recordedAt: Self.at, event: .activityCompleted(position: 0, attempt: 2, output: Self.input)))
        #expect(journal.status == .running && journal.parkedReason(workflowID: "w") == nil)
    }

    @Test("the stored text written directly is the Codable wire form, and odd names read back whole")
    func payloadText() throws {
        let options = ActivityOptions(startToCloseTimeout: .seconds(30), retryPolicy: .init(maximumAttempts: 3), onFinalFailure: .throw)
        let plain: [WorkflowEvent] = [
            .workflowStarted(name: "counted", input: Self.input),
            .activityScheduled(.init(position: 3, activity: "echo", queue: "default-queue", input: Self.input, options: options, stepKey: "echo@3")),
            Self.scheduled(4),
            .activityCompleted(position: 3, attempt: 2, output: try JSONText(validating: #"{"b":[1,2.5,"x/y"],"a":null}"#)),
            .workflowCompleted(output: .null),
            .activityFailed(position: 1, attempt: 1, failure: Self.failure),
        ]
        for event in plain {
            #expect(try event.payloadText() == FlowJSON.encodeText(event))
        }
        let odd = WorkflowEvent.activityScheduled(.init(
            position: 0, activity: "quote\"back\\slash", queue: "tab\tnew\nline\u{01}", input: Self.input, options: .init(), stepKey: "é✓@0"
        ))
        #expect(try FlowJSON.decode(WorkflowEvent.self, from: try odd.payloadText()) == odd)
        #expect(try FlowJSON.decode(WorkflowEvent.self, from: try WorkflowEvent.workflowStarted(name: "a\"b", input: Self.input).payloadText()) == .workflowStarted(name: "a\"b", input: Self.input))
    }

    @Test("an update is accepted once and completed once, and the journal keeps its result")
    func updates() throws {
        var journal = try WorkflowJournal(Self.entries([.workflowStarted(name: "counted", input: Self.input), .updateAccepted(id: "u", name: "set", input: Self.input)]))
        #expect(journal.updates["u"] == .accepted)
        #expect(throws: JournalError.self) {
            try journal.apply(JournalEntry(sequence: 3, epoch: 0, recordedAt: Self.at, event: .updateAccepted(id: "u", name: "set", input: Self.input)))
        }
        try journal.apply(JournalEntry(sequence: 3, epoch: 0, recordedAt: Self.at, event: .updateCompleted(id: "u", output: Self.input, failure: nil)))
        #expect(journal.updates["u"] == .completed(UpdateResult(output: Self.input, failure: nil)))
        #expect(throws: JournalError.self) {
            try journal.apply(JournalEntry(sequence: 4, epoch: 0, recordedAt: Self.at, event: .updateCompleted(id: "u", output: nil, failure: Self.failure)))
        }
        #expect(throws: JournalError.self) {
            try journal.apply(JournalEntry(sequence: 4, epoch: 0, recordedAt: Self.at, event: .updateCompleted(id: "other", output: nil, failure: nil)))
        }
    }
}
