import FlowCoordinator
import FlowCore
import FlowPostgres
import FlowTesting
import Foundation
import Testing

/// One suite every ``WorkflowStore`` must pass, written once and run against each
/// implementation: SQLite, the in-memory one, and PostgreSQL when it comes. It holds the
/// promises `WorkflowStore.swift` makes: idempotent start, appends fenced by sequence and
/// epoch that change nothing when refused, a crash between any two writes, paging, due
/// timers, and projections that agree with the journal, and with each other across stores.
@Suite("the workflow store contract")
struct WorkflowStoreConformance {
    /// A store to test, and how to "restart" it: a new value over the same durable state.
    struct Subject: Sendable, CustomTestStringConvertible {
        var name: String
        var open: @Sendable () async throws -> any WorkflowStore
        var reopen: @Sendable (any WorkflowStore) async throws -> any WorkflowStore

        var testDescription: String { name }

        static let sqlite = Subject(
            name: "SQLite",
            open: {
                let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-conformance-\(UUID().uuidString.prefix(8))")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                return try SQLiteWorkflowStore(path: folder.appendingPathComponent("workflows.sqlite").path)
            },
            reopen: { store in try SQLiteWorkflowStore(path: (store as! SQLiteWorkflowStore).path) }
        )
        static let inMemory = Subject(name: "in memory", open: { InMemoryWorkflowStore() }, reopen: { $0 })
        /// A new database on the test server for each store (`TestPostgres`); a restart
        /// closes the store's connections and connects again.
        static let postgres = Subject(
            name: "PostgreSQL",
            open: { try await PostgresWorkflowStore.open(try await TestPostgres.newDatabase(), maximumConnections: 4, logger: TestPostgres.logger) },
            reopen: { store in
                let store = store as! PostgresWorkflowStore
                await store.close()
                return try await PostgresWorkflowStore.open(store.location, maximumConnections: 4, logger: TestPostgres.logger)
            }
        )
        static let all = [sqlite, inMemory, postgres]
    }

    static let at = Date(timeIntervalSince1970: 1_800_000_000)
    static let input = try! JSONText(validating: #"{"value":"a"}"#)
    static let failure = ActivityFailure(type: "NotReady", message: "not yet", retryable: false)

    static func scheduled(_ position: Int, _ activity: String = "counted_echo") -> WorkflowEvent {
        .activityScheduled(.init(position: position, activity: activity, queue: "default-queue", input: input, options: .init(), stepKey: "\(activity)@\(position)"))
    }

    /// A run with every kind of write, one append (or note) at a time, each a second after
    /// the one before: what the crash test stops between, and what both stores must show
    /// alike.
    static let script: [Write] = [
        .append([scheduled(0)]),
        .note(.sent(messageID: "w/counted_echo@0", resentBecause: nil)),
        .append([.activityCompleted(position: 0, attempt: 1, output: input)]),
        .append([scheduled(1), scheduled(2, "needs_a_fix"), .markerRecorded(position: 3, name: "now", value: input)]),
        .note(.heard(messageID: "w/needs_a_fix@2", attempt: 2, details: input)),
        .append([.activityParked(position: 2, attempt: 3, failure: failure)]),
        .note(.sent(messageID: "w/counted_echo@1", resentBecause: "no final reply within 30s")),
        .append([.activityTimedOut(position: 1, failure: failure)]),
        .append([.replayDiverged(reason: "nondeterminism: at position 4 …")]),
        .note(.resumed(workflowID: "w", by: "coordinator-2")),
        .append([.replayRecovered]),
        .append([.activityCompleted(position: 2, attempt: 4, output: input)]),
        .append([.timerStarted(position: 4, key: "sleep@4", fireAt: at.addingTimeInterval(3600))]),
        .append([.timerFired(position: 4), .cancelRequested(reason: "an operator asked")]),
        .append([.workflowCancelled(failure: .cancelled("the workflow was cancelled"))]),
    ]

    enum Write: Sendable {
        case append([WorkflowEvent])
        case note(DeliveryNote)
    }

    /// Starts workflow `w` and makes the script's first `count` writes, reopening the
    /// store after each one when `crashing`.
    static func play(_ subject: Subject, writes count: Int, crashing: Bool) async throws -> any WorkflowStore {
        var store = try await subject.open()
        _ = try await store.create(WorkflowStart(id: "w", name: "counted", input: input, recipient: ResultRecipient(replyTo: "starter", correlationID: "c")), epoch: 0, at: at)
        for (index, write) in script.prefix(count).enumerated() {
            let now = at.addingTimeInterval(Double(index + 1))
            switch write {
            case .append(let events):
                let last = try await store.journal(workflowID: "w").last?.sequence ?? 0
                try await store.append(events, to: "w", expectedSequence: last, epoch: 0, at: now)
            case .note(let note):
                try await store.note(note, at: now)
            }
            if crashing { store = try await subject.reopen(store) }
        }
        return store
    }

    /// What a store shows of workflow `w`: its record, steps and history, as text to compare.
    static func projection(_ store: any WorkflowStore) async throws -> [String] {
        let record = try #require(try await store.workflow(id: "w"))
        var lines = ["\(record)"]
        lines += try await store.steps(workflowID: "w").map { "\($0)" }
        lines += try await store.history(workflowID: "w").map { "\($0.at.timeIntervalSince1970) \($0.kind.rawValue) \($0.stepKey ?? "-") \($0.detail)" }
        return lines
    }

    @Test("starting an id twice creates one workflow, and each starter is a recipient once", arguments: Subject.all)
    func idempotentStart(_ subject: Subject) async throws {
        let store = try await subject.open()
        let first = ResultRecipient(replyTo: "a", correlationID: "1")
        let second = ResultRecipient(replyTo: "b", correlationID: "2")
        guard case .created(let record) = try await store.create(WorkflowStart(id: "w", name: "counted", input: Self.input, recipient: first), epoch: 0, at: Self.at) else {
            Issue.record("the first start must create the workflow")
            return
        }
        #expect(record.status == .running && record.startedAt == Self.at)
        guard case .existing(let again) = try await store.create(WorkflowStart(id: "w", name: "other", input: .emptyObject, recipient: second), epoch: 0, at: Self.at.addingTimeInterval(5)) else {
            Issue.record("a second start must find the first")
            return
        }
        #expect(again == record, "the first start's name, input and time stand")
        _ = try await store.create(WorkflowStart(id: "w", name: "counted", input: Self.input, recipient: first), epoch: 0, at: Self.at)
        #expect(Set(try await store.recipients(workflowID: "w")) == [first, second])
        #expect(try await store.journal(workflowID: "w").map(\.event) == [.workflowStarted(name: "counted", input: Self.input)])
        #expect(try await store.history(workflowID: "w").map(\.kind) == [.workflowStarted])
        #expect(try await store.countWorkflows(matching: WorkflowFilter()) == 1)
    }

    @Test("two writers that read the same journal cannot both append: the second is refused and changes nothing", arguments: Subject.all)
    func appendConflicts(_ subject: Subject) async throws {
        let store = try await Self.play(subject, writes: 1, crashing: false)
        let read = try await store.journal(workflowID: "w").last!.sequence
        try await store.append([.activityCompleted(position: 0, attempt: 1, output: Self.input)], to: "w", expectedSequence: read, epoch: 0, at: Self.at)
        let before = try await Self.projection(store)
        let journal = try await store.journal(workflowID: "w")
        await #expect {
            try await store.append([.activityFailed(position: 0, attempt: 1, failure: Self.failure), Self.scheduled(1)], to: "w", expectedSequence: read, epoch: 0, at: Self.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .sequenceConflict }
        await #expect {
            try await store.append([Self.scheduled(1)], to: "w", expectedSequence: read + 5, epoch: 0, at: Self.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .sequenceConflict }
        #expect(try await store.journal(workflowID: "w") == journal)
        #expect(try await Self.projection(store) == before)
        await #expect {
            try await store.append([Self.scheduled(0)], to: "nobody", expectedSequence: 0, epoch: 0, at: Self.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .noSuchWorkflow }
        #expect(try await store.journal(workflowID: "nobody").isEmpty)
    }

    @Test("a newer epoch takes a workflow over by writing; the older one is fenced out from then on", arguments: Subject.all)
    func staleEpochs(_ subject: Subject) async throws {
        let store = try await subject.open()
        _ = try await store.create(WorkflowStart(id: "w", name: "counted", input: Self.input), epoch: 1, at: Self.at)
        try await store.append([Self.scheduled(0)], to: "w", expectedSequence: 1, epoch: 1, at: Self.at)
        await #expect {
            try await store.append([Self.scheduled(1)], to: "w", expectedSequence: 2, epoch: 0, at: Self.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .staleEpoch }
        let taken = try await store.append([Self.scheduled(1)], to: "w", expectedSequence: 2, epoch: 3, at: Self.at)
        #expect(taken.map(\.epoch) == [3] && taken.map(\.sequence) == [3])
        let before = try await Self.projection(store)
        await #expect {
            try await store.append([.activityCompleted(position: 0, attempt: 1, output: Self.input)], to: "w", expectedSequence: 3, epoch: 1, at: Self.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .staleEpoch }
        #expect(try await Self.projection(store) == before, "the fenced write changed nothing")
        #expect(try await store.journal(workflowID: "w").map(\.epoch) == [1, 1, 3])
        try await store.append([.activityCompleted(position: 0, attempt: 1, output: Self.input)], to: "w", expectedSequence: 3, epoch: 3, at: Self.at)
        #expect(try await store.step(messageID: "w/counted_echo@0")?.status == .completed)
    }

    @Test("a restart after any write finds the journal whole up to it, and projections that agree with it", arguments: Subject.all)
    func crashBetweenWrites(_ subject: Subject) async throws {
        for count in 0...Self.script.count {
            let store = try await Self.play(subject, writes: count, crashing: true)
            let journal = try await store.checkedJournal("w")
            let appended = Self.script.prefix(count).reduce(into: 1) { total, write in if case .append(let events) = write { total += events.count } }
            #expect(journal.entries.count == appended, "after \(count) writes")
            #expect(journal.entries.map(\.sequence) == Array(1...Int64(appended)))
            let record = try #require(try await store.workflow(id: "w"))
            #expect(record.status == journal.status, "after \(count) writes")
            #expect(record.parkedReason == journal.parkedReason(workflowID: "w"), "after \(count) writes")
            #expect(record.cancelRequested == journal.cancelRequested)
            let steps = try await store.steps(workflowID: "w")
            let activities = journal.commands.compactMap { if case .activity(let scheduled, let state) = $0 { (scheduled, state) } else { nil } }
            #expect(steps.map(\.stepKey) == activities.map(\.0.stepKey), "after \(count) writes")
            for (step, (_, state)) in zip(steps, activities) {
                let expected: StepStatus = switch state {
                case .waiting: .scheduled
                case .completed: .completed
                case .failed: .failed
                case .parked: .parked
                }
                #expect(step.status == expected, "\(step.stepKey) after \(count) writes")
            }
            #expect(try await store.unfinishedWorkflows().map(\.id) == (journal.status.isFinished ? [] : ["w"]))
        }
    }

    @Test("every store shows the same run the same way: record, steps and history lines")
    func storesAgree() async throws {
        let sqlite = try await Self.projection(try await Self.play(.sqlite, writes: Self.script.count, crashing: false))
        let memory = try await Self.projection(try await Self.play(.inMemory, writes: Self.script.count, crashing: false))
        let postgres = try await Self.projection(try await Self.play(.postgres, writes: Self.script.count, crashing: false))
        #expect(sqlite == memory)
        #expect(sqlite == postgres)
        // And along the way: parked by a step, then by its code, then running again.
        for count in [6, 9, 11, 12] {
            let sqlite = try await Self.projection(try await Self.play(.sqlite, writes: count, crashing: false))
            let memory = try await Self.projection(try await Self.play(.inMemory, writes: count, crashing: false))
            let postgres = try await Self.projection(try await Self.play(.postgres, writes: count, crashing: false))
            #expect(sqlite == memory, "after \(count) writes")
            #expect(sqlite == postgres, "after \(count) writes")
        }
    }

    @Test("a workflow parks on a dead-lettered step or a divergence, and runs again when both are cleared", arguments: Subject.all)
    func parking(_ subject: Subject) async throws {
        func status(_ writes: Int) async throws -> (WorkflowStatus?, String?) {
            let record = try await Self.play(subject, writes: writes, crashing: false).workflow(id: "w")
            return (record?.status, record?.parkedReason)
        }
        #expect(try await status(5) == (.running, nil))
        let parked = try await status(6)
        #expect(parked.0 == .parked && parked.1?.hasPrefix("waiting for dead-letter replay: needs_a_fix (message w/needs_a_fix@2)") == true)
        #expect(try await status(9) == (.parked, "nondeterminism: at position 4 …"), "the divergence's reason comes first")
        #expect(try await status(11).0 == .parked, "recovered, but its step is still parked")
        #expect(try await status(12) == (.running, nil))
        let history = try await Self.play(subject, writes: 12, crashing: false).history(workflowID: "w").map(\.kind)
        #expect(history.filter { $0 == .workflowParked }.count == 1 && history.last == .workflowUnparked)
        let ended = try #require(try await Self.play(subject, writes: Self.script.count, crashing: false).workflow(id: "w"))
        #expect(ended.status == .cancelled && ended.parkedReason == nil && ended.finishedAt == Self.at.addingTimeInterval(15))
        #expect(ended.error?.type == ActivityFailure.cancelled("").type)
    }

    @Test("notes count sends and progress beside the journal, and never change it", arguments: Subject.all)
    func notes(_ subject: Subject) async throws {
        let store = try await Self.play(subject, writes: 7, crashing: false)
        let journal = try await store.journal(workflowID: "w")
        try await store.note(.sent(messageID: "w/counted_echo@1", resentBecause: nil), at: Self.at.addingTimeInterval(100))
        try await store.note(.heard(messageID: "w/counted_echo@0", attempt: 9, details: nil), at: Self.at.addingTimeInterval(101))
        try await store.note(.sent(messageID: "w/nothing@9", resentBecause: nil), at: Self.at)
        #expect(try await store.journal(workflowID: "w") == journal)
        let resent = try #require(try await store.step(messageID: "w/counted_echo@1"))
        #expect(resent.sends == 2 && resent.sentAt == Self.at.addingTimeInterval(100) && resent.lastHeardAt == nil)
        let finished = try #require(try await store.step(messageID: "w/counted_echo@0"))
        #expect(finished.attempt == 1, "progress after the end is not the step's")
        let parked = try #require(try await store.step(messageID: "w/needs_a_fix@2"))
        #expect(parked.attempt == 3 && parked.error == Self.failure)
    }

    @Test("a journal and a history read in pages return every entry once, in order", arguments: Subject.all)
    func paging(_ subject: Subject) async throws {
        let store = try await subject.open()
        _ = try await store.create(WorkflowStart(id: "long", name: "counted", input: Self.input), epoch: 0, at: Self.at)
        var last: Int64 = 1
        for batch in 0..<25 {
            let events = (0..<50).map { Self.scheduled(batch * 50 + $0) }
            last = try await store.append(events, to: "long", expectedSequence: last, epoch: 0, at: Self.at).last!.sequence
        }
        #expect(last == 1251)
        var read: [Int64] = []
        while true {
            let page = try await store.journal(workflowID: "long", after: read.last ?? 0, limit: 100)
            read += page.map(\.sequence)
            if page.count < 100 { break }
        }
        #expect(read == Array(1...1251))
        #expect(try await store.journal(workflowID: "long").count == 1251)
        #expect(try await store.journal(workflowID: "long", after: 1250, limit: 10).map(\.sequence) == [1251])
        let lines = try await store.history(workflowID: "long", after: nil, limit: 1000)
        let rest = try await store.history(workflowID: "long", after: lines.last!.sequence, limit: 1000)
        #expect(lines.count == 1000 && rest.count == 251)
        #expect(Set(lines.map(\.sequence)).isDisjoint(with: rest.map(\.sequence)))
    }

    @Test("due timers are those not fired, due by the time asked, of workflows still open, soonest first", arguments: Subject.all)
    func dueTimers(_ subject: Subject) async throws {
        let store = try await subject.open()
        for (index, id) in ["a", "b", "c", "d"].enumerated() {
            _ = try await store.create(WorkflowStart(id: id, name: "counted", input: Self.input), epoch: 0, at: Self.at)
            try await store.append(
                [.timerStarted(position: 0, key: "sleep@0", fireAt: Self.at.addingTimeInterval(Double(40 - index * 10)))], to: id, expectedSequence: 1, epoch: 0, at: Self.at
            )
        }
        try await store.append([.timerFired(position: 0)], to: "b", expectedSequence: 2, epoch: 0, at: Self.at)
        try await store.append([.workflowCompleted(output: Self.input)], to: "c", expectedSequence: 2, epoch: 0, at: Self.at)
        #expect(try await store.dueTimers(until: Self.at.addingTimeInterval(5), limit: 10).isEmpty)
        #expect(try await store.dueTimers(until: Self.at.addingTimeInterval(40), limit: 10).map(\.workflowID) == ["d", "a"])
        #expect(try await store.dueTimers(until: Self.at.addingTimeInterval(40), limit: 1) == [
            DueTimer(workflowID: "d", position: 0, key: "sleep@0", fireAt: Self.at.addingTimeInterval(10)),
        ])
    }

    @Test("a workflow's end leaves no step open: a step still waiting, or parked, shows cancelled with the end that left it", arguments: Subject.all)
    func endCancelsOpenSteps(_ subject: Subject) async throws {
        let store = try await subject.open()
        _ = try await store.create(WorkflowStart(id: "w", name: "counted", input: Self.input), epoch: 0, at: Self.at)
        let steps = (0..<3).map { WorkflowEvent.ScheduledActivity(position: $0, activity: "counted_echo", queue: "default-queue", input: Self.input, options: .init(), stepKey: "counted_echo@\($0)") }
        try await store.append(steps.map(WorkflowEvent.activityScheduled), to: "w", expectedSequence: 1, epoch: 0, at: Self.at)
        try await store.append([.activityCompleted(position: 0, attempt: 1, output: Self.input)], to: "w", expectedSequence: 4, epoch: 0, at: Self.at)
        try await store.append([WorkflowEvent.activityParked(position: 2, attempt: 3, failure: .nonRetryable(.init(rawValue: "NotReady"), "not yet"))], to: "w", expectedSequence: 5, epoch: 0, at: Self.at)
        #expect(try await store.steps(workflowID: "w").map(\.status) == [.completed, .scheduled, .parked])
        try await store.append([.workflowCancelled(failure: .cancelled("an operator asked"))], to: "w", expectedSequence: 6, epoch: 0, at: Self.at)
        let ended = try await store.steps(workflowID: "w").sorted { $0.stepKey < $1.stepKey }
        #expect(ended.map(\.status) == [.completed, .cancelled, .cancelled])
        #expect(ended.dropFirst().allSatisfy { $0.error == .cancelled("its workflow ended (cancelled) before this step did") })
        #expect(ended.first?.error == nil)
    }

    @Test("search attributes and the memo follow the workflow's markers, and lists filter by them the same way in every store", arguments: Subject.all)
    func searchAttributes(_ subject: Subject) async throws {
        let store = try await subject.open()
        func file(_ id: String, at position: Int, _ attributes: String, after sequence: Int64) async throws {
            try await store.append(
                [.markerRecorded(position: position, name: "search_attributes", value: try JSONText(validating: attributes))], to: id, expectedSequence: sequence, epoch: 0, at: Self.at
            )
        }
        for id in ["a", "b", "c"] { _ = try await store.create(WorkflowStart(id: id, name: "counted", input: Self.input), epoch: 0, at: Self.at) }
        try await file("a", at: 0, #"{"format": "pdf", "pages": 12, "urgent": true}"#, after: 1)
        try await file("b", at: 0, #"{"format": "docx", "pages": 3, "urgent": false, "owner": "ada"}"#, after: 1)
        try await file("b", at: 1, #"{"owner": null, "pages": 30}"#, after: 2)
        try await file("c", at: 0, #"{"format": "12", "pages": "many"}"#, after: 1)
        try await store.append([.markerRecorded(position: 2, name: "memo", value: try JSONText(validating: #"{"source": "upload", "tags": ["x"]}"#))], to: "b", expectedSequence: 3, epoch: 0, at: Self.at)
        try await store.append([.markerRecorded(position: 3, name: "memo", value: try JSONText(validating: #"{"tags": null, "checked": true}"#))], to: "b", expectedSequence: 4, epoch: 0, at: Self.at)

        #expect(try await store.attributes(workflowID: "a") == WorkflowAttributes(search: ["format": .text("pdf"), "pages": .number(12), "urgent": .bool(true)]))
        let b = try await store.attributes(workflowID: "b")
        #expect(b.search == ["format": .text("docx"), "pages": .number(30), "urgent": .bool(false)], "a null removes, a value replaces")
        #expect(try b.memo?.decode(FlowCore.JSONValue.self) == FlowCore.JSONValue.object(["source": .string("upload"), "checked": .bool(true)]))
        #expect(try await store.attributes(workflowID: "nobody") == WorkflowAttributes())

        func ids(_ text: String) async throws -> [String] {
            let filter = try WorkflowFilter().narrowed(by: try WorkflowWhere.parse(text))
            let listed = try await store.workflows(matching: filter, after: nil, limit: 10).map(\.id).sorted()
            #expect(try await store.countWorkflows(matching: filter) == listed.count)
            return listed
        }
        #expect(try await ids(#"format = "pdf""#) == ["a"])
        #expect(try await ids("format != pdf") == ["b", "c"], "!= keeps workflows without the value, of another kind too")
        #expect(try await ids("pages >= 12") == ["a", "b"], "numbers compare as numbers, and c's text \"many\" is no number")
        #expect(try await ids("pages < 20 AND urgent = true") == ["a"])
        #expect(try await ids("format = 12") == [], "the number 12 is not the text \"12\"")
        #expect(try await ids(#"format = "12""#) == ["c"])
        #expect(try await ids("urgent = false") == ["b"])
        #expect(try await ids("owner = ada") == [])
        #expect(try await ids("status = running AND name = counted AND format > d") == ["a", "b"], "texts compare in order: docx and pdf after d, 12 before")
    }

    @Test("a finished workflow owes its result until each recipient is removed", arguments: Subject.all)
    func resultsOwed(_ subject: Subject) async throws {
        let store = try await Self.play(subject, writes: Self.script.count, crashing: false)
        #expect(try await store.finishedWithRecipients().map(\.id) == ["w"])
        try await store.removeRecipient(workflowID: "w", ResultRecipient(replyTo: "starter", correlationID: "c"))
        #expect(try await store.finishedWithRecipients().isEmpty)
        #expect(try await store.recipients(workflowID: "w").isEmpty)
    }

    @Test("a schedule keeps every field of its state, is replaced keeping its runs and buffer, and is removed once", arguments: Subject.all)
    func schedules(_ subject: Subject) async throws {
        let store = try await subject.open()
        let schedule = ScheduleRecord(
            name: "nightly", workflow: "counted", input: Self.input, everySeconds: 60, nextRunAt: Self.at, runs: 0, overlap: .bufferAll,
            catchupWindowSeconds: 600, jitterSeconds: 30
        )
        try await store.upsertSchedule(schedule)
        var ran = schedule
        ran.lastRunAt = Self.at
        ran.nextRunAt = Self.at.addingTimeInterval(60)
        ran.runs = 1
        ran.lastWorkflowID = "nightly@1800000000"
        ran.buffered = [Self.at.addingTimeInterval(60), Self.at.addingTimeInterval(120.5)]
        ran.skipped = 2
        ran.paused = true
        ran.pauseNote = "ignored: a run state keeps the pause as it is"
        try await store.recordScheduleState(ran)
        ran.paused = false
        ran.pauseNote = nil
        #expect(try await store.schedules() == [ran])
        let paused = try await store.setSchedulePaused(name: "nightly", paused: true, note: "the disk is full")
        #expect(paused?.paused == true && paused?.pauseNote == "the disk is full" && paused?.runs == 1)
        var later = ran
        later.runs = 2
        try await store.recordScheduleState(later)
        #expect(try await store.schedules().first?.pauseNote == "the disk is full", "a run state written after a pause keeps it")
        #expect(try await store.setSchedulePaused(name: "nowhere", paused: true, note: nil) == nil)
        var replaced = schedule
        replaced.everySeconds = 120
        replaced.overlap = .skip
        try await store.upsertSchedule(replaced)
        let stored = try #require(try await store.schedules().first)
        #expect(stored.everySeconds == 120 && stored.runs == 2 && stored.lastRunAt == Self.at && stored.overlap == .skip && !stored.paused)
        #expect(stored.buffered == ran.buffered && stored.lastWorkflowID == ran.lastWorkflowID && stored.skipped == 2)
        var gone = stored
        gone.name = "never-added"
        try await store.recordScheduleState(gone)
        #expect(try await store.schedules().count == 1, "an update of a schedule that is not there adds nothing")
        #expect(try await store.removeSchedule(name: "nightly"))
        #expect(try await !store.removeSchedule(name: "nightly"))
        #expect(try await store.schedules().isEmpty)
    }

    @Test("appends from many writers at once each get their own answer: one winner per journal, and every other workflow's append kept", arguments: Subject.all)
    func concurrentAppends(_ subject: Subject) async throws {
        let store = try await subject.open()
        let ids = (0..<100).map { "w\($0)" }
        for id in ids { _ = try await store.create(WorkflowStart(id: id, name: "counted", input: Self.input), epoch: 0, at: Self.at) }
        // Three writers race for each journal's event 2; the other two must be refused.
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for id in ids {
                for activity in ["a", "b", "c"] {
                    group.addTask {
                        do {
                            try await store.append([Self.scheduled(0, activity)], to: id, expectedSequence: 1, epoch: 0, at: Self.at)
                            return true
                        } catch let error as WorkflowStoreError {
                            return error.code != .sequenceConflict
                        } catch {
                            return true
                        }
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == ids.count, "one append per journal won; every loser was refused as a conflict")
        for id in ids {
            let journal = try await store.checkedJournal(id)
            #expect(journal.entries.count == 2)
            #expect(try await store.steps(workflowID: id).count == 1, "the losers left no step behind")
        }
    }
}
