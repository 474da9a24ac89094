import FlowCoordinator
import FlowContracts
import FlowCore
import FlowDeadLetters
import FlowTesting
import FlowTransport
import Foundation
import Testing

/// The whole coordinator, with a worker, on the in-memory transport and a manual clock:
/// replay, re-sends, timeouts, parking, duplicates, stale replies and a crash between every
/// record and the publish after it, in milliseconds and with no broker.
@Suite("the coordinator on the in-memory transport and a manual clock")
struct InMemoryCoordinatorTests {
    let counter = RunCounter()
    let fixed = Switch()

    func harness(_ broker: InMemoryBroker = InMemoryBroker(), clock: ManualWallClock = ManualWallClock(), inMemoryStore: Bool = false) async throws -> CoordinatorHarness {
        try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: fixed),
            transports: .inMemory(broker), clock: clock, inMemoryStore: inMemoryStore
        )
    }

    static let input = try! JSONText(encoding: CountedEcho.Payload(value: "a"))
    static let output = CountedWorkflow.Output(first: "a", left: "a-left", right: "a-right")

    @Test("a workflow's steps, parallel ones too, run once each")
    func parallelSteps() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: CountedWorkflow.name, id: "w1", input: Self.input, recipient: nil)
        let record = try await harness.waitFor("w1", [.completed, .failed], timeout: .seconds(120))
        #expect(try record.output?.decode(CountedWorkflow.Output.self) == Self.output)
        #expect(counter.all.count == 3)
        #expect(counter.all.values.allSatisfy { $0 == 1 })
        // The journal holds the run: three commands, each answered once, then the end; the
        // step rows beside it carry the same positions.
        let journal = try await harness.store.checkedJournal("w1")
        #expect(journal.status == .completed)
        #expect(journal.commands.count == 3)
        #expect(journal.entries.first?.event.kind == "workflow_started")
        #expect(journal.entries.last?.event == .workflowCompleted(output: try #require(record.output)))
        #expect(journal.entries.filter { $0.event.kind == "activity_completed" }.count == 3)
        for (position, command) in journal.commands.enumerated() {
            guard case .activity(let scheduled, .completed(let output)) = command else { Issue.record("position \(position): \(command)"); continue }
            let step = try #require(try await harness.store.step(messageID: "w1/\(scheduled.stepKey)"))
            #expect(step.result == output && step.input == scheduled.input)
        }
        await harness.shutdown()
    }

    @Test("a request the broker lost is sent again under the same id once its reply is overdue on the coordinator's clock")
    func lostRequestIsResent() async throws {
        let broker = InMemoryBroker()
        let clock = ManualWallClock()
        let harness = try await harness(broker, clock: clock)
        broker.inject(.lose) { $0.properties.type == CountedEcho.name }
        try await harness.coordinator.start(workflow: SleeplessEcho.name, id: "lost", input: Self.input, recipient: nil)
        try await waitUntil { try await harness.store.steps(workflowID: "lost").first?.sentAt != nil }
        #expect(try await harness.store.workflow(id: "lost")?.status == .running)
        // The step's budget: 5 attempts of 5 minutes, the retry tiers between them, and 5 s of grace.
        try await clock.advanceWhenAsleep(by: .seconds(3600))
        let record = try await harness.waitFor("lost", [.completed, .failed], timeout: .seconds(120))
        #expect(record.status == .completed)
        let steps = try await harness.store.steps(workflowID: "lost")
        #expect(steps.map(\.sends) == [2])
        let sends = broker.published.filter { $0.properties.type == CountedEcho.name }
        #expect(sends.count == 2)
        #expect(Set(sends.map(\.properties.messageID)).count == 1, "the re-send carries the same message id")
        #expect(try await harness.store.history(workflowID: "lost").contains { $0.kind == .activityResent })
        await harness.shutdown()
    }

    @Test("a result the broker refuses is sent again by the supervision loop, once, without waiting for a restart")
    func refusedResultIsSentAgain() async throws {
        let broker = InMemoryBroker()
        let clock = ManualWallClock()
        let harness = try await harness(broker, clock: clock)
        let resultQueue = "refused-results"
        try await harness.requester.declare(Topology(queues: [.init(name: resultQueue)]))
        broker.inject(.refuse(AMQPError(.publishNacked, "the broker refused the result"))) { $0.routingKey == resultQueue }
        let recipient = ResultRecipient(replyTo: resultQueue, correlationID: "refused-start")
        try await harness.coordinator.start(workflow: SleeplessEcho.name, id: "refused", input: Self.input, recipient: recipient)
        #expect(try await harness.waitFor("refused", [.completed, .failed]).status == .completed)
        try await waitUntil(timeout: .seconds(30)) {
            if try await harness.requester.inspectQueue(resultQueue).messageCount > 0 { return true }
            try await clock.advanceWhenAsleep(by: .seconds(1))
            return false
        }
        #expect(try await harness.requester.inspectQueue(resultQueue).messageCount == 1)
        #expect(try await harness.store.recipients(workflowID: "refused").isEmpty, "a recipient told is forgotten")
        #expect(broker.published.filter { $0.routingKey == resultQueue }.count == 1, "the refused publish is not counted as taken")
        await harness.shutdown()
    }

    @Test("a step no worker answers is re-sent, then times out and fails its workflow, as the clock says")
    func unansweredStepTimesOut() async throws {
        let clock = ManualWallClock()
        let harness = try await harness(clock: clock)
        try await harness.coordinator.start(workflow: LostWorkerWorkflow.name, id: "unserved", input: .emptyObjectForTests, recipient: nil)
        try await waitUntil { try await harness.store.steps(workflowID: "unserved").first?.sends == 1 }
        try await clock.advanceWhenAsleep(by: .milliseconds(700))
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await harness.store.steps(workflowID: "unserved").first?.sends == 1, "within its 800 ms nothing happens")
        try await clock.advanceWhenAsleep(by: .milliseconds(200))
        try await waitUntil { try await harness.store.steps(workflowID: "unserved").first?.sends == 2 }
        try await clock.advanceWhenAsleep(by: .milliseconds(900))
        let record = try await harness.waitFor("unserved", [.completed, .failed], timeout: .seconds(120))
        #expect(record.status == .failed)
        #expect(record.error?.kind == .activityTimedOut)
        #expect(record.error?.message.contains("after 2 sends") == true)
        await harness.shutdown()
    }

    @Test("a durable sleep ends when the clock passes it, and a restart in the middle does not start it again")
    func durableSleep() async throws {
        let clock = ManualWallClock()
        let harness = try await harness(clock: clock)
        try await harness.coordinator.start(workflow: SleepyWorkflow.name, id: "sleepy", input: Self.input, recipient: nil)
        try await waitUntil { try await harness.store.history(workflowID: "sleepy").contains { $0.kind == .timerStarted } }
        try await clock.advanceWhenAsleep(by: .seconds(2), sleepers: 2)
        await harness.stopCoordinator()
        harness.startCoordinator()
        try await waitUntil { try await harness.store.history(workflowID: "sleepy").contains { $0.kind == .workflowResumed } }
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await harness.store.workflow(id: "sleepy")?.status == .running, "3 s have not passed")
        try await clock.advanceWhenAsleep(by: .seconds(1), sleepers: 2)
        let record = try await harness.waitFor("sleepy", [.completed, .failed], timeout: .seconds(120))
        #expect(record.status == .completed)
        let kinds = try await harness.store.history(workflowID: "sleepy").map(\.kind)
        #expect(kinds.filter { $0 == .timerStarted }.count == 1)
        #expect(kinds.filter { $0 == .timerFired }.count == 1)
        let journal = try await harness.store.checkedJournal("sleepy")
        guard case .timer(_, let fireAt, fired: true) = journal.commands.first else { Issue.record("\(journal.commands)"); return }
        #expect(fireAt == journal.entries[0].recordedAt.addingTimeInterval(3), "the timer fires 3 s after the start, restart or not")
        #expect(journal.commands.count == 2 && journal.status == .completed)
        await harness.shutdown()
    }

    @Test("a dead-lettered step parks its workflow; the replay after the fix lets it finish", arguments: ["SQLite", "in memory"])
    func parkAndReplay(store: String) async throws {
        let harness = try await harness(inMemoryStore: store == "in memory")
        try await harness.coordinator.start(workflow: ParkingWorkflow.name, id: "parked", input: .emptyObjectForTests, recipient: nil)
        let parked = try await harness.waitFor("parked", [.parked, .completed, .failed], timeout: .seconds(120))
        #expect(parked.status == .parked)
        fixed.turnOn()
        let report = try await DeadLetterQueue(transport: harness.requester, names: harness.names, audit: nil).replay(DeadLetterFilter(workflowID: "parked"), operatorName: "test")
        #expect(report.replayed.count == 1)
        let finished = try await harness.waitFor("parked", [.completed, .failed, .cancelled], timeout: .seconds(120))
        #expect(finished.status == .completed)
        // The park and the replay's reply are both in the journal, at the step's position.
        let kinds = try await harness.store.checkedJournal("parked").entries.map { "\($0.event.kind)@\($0.event.position.map(String.init) ?? "-")" }
        #expect(kinds == ["workflow_started@-", "activity_scheduled@0", "activity_parked@0", "activity_completed@0", "workflow_completed@-"])
        await harness.shutdown()
    }

    @Test("duplicated replies are counted and change nothing; a reply for no step is counted as stale", arguments: ["SQLite", "in memory"])
    func duplicateAndStaleReplies(store: String) async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker, inMemoryStore: store == "in memory")
        broker.inject(.duplicate, times: 3) { $0.routingKey == harness.names.coordinatorReplyQueue }
        try await harness.coordinator.start(workflow: CountedWorkflow.name, id: "dup", input: Self.input, recipient: nil)
        let record = try await harness.waitFor("dup", [.completed, .failed], timeout: .seconds(120))
        #expect(try record.output?.decode(CountedWorkflow.Output.self) == Self.output)
        try await waitUntil { harness.coordinator.statistics.count(.duplicateReply) == 3 }
        let stale = ActivityReply(status: .completed, activity: CountedEcho.name, messageID: "nobody/step#1", attempt: 1, output: .emptyObjectForTests)
        try await harness.requester.publish(
            AMQPMessage(routingKey: harness.names.coordinatorReplyQueue, properties: .init(correlationID: "nobody/step#1"), body: Array(try FlowJSON.encode(stale)))
        )
        try await waitUntil { harness.coordinator.statistics.count(.staleReply) == 1 }
        #expect(counter.all.values.allSatisfy { $0 == 1 })
        await harness.shutdown()
    }

    @Test("a crash between any record and the publish after it loses nothing and runs no finished step again", arguments: ["SQLite", "in memory"])
    func crashAtEveryPoint(store: String) async throws {
        // How many writes a whole run makes, so every one of them is a crash point.
        let writes = try await runWithCrash(afterWrites: .max, inMemoryStore: store == "in memory").writes
        #expect(writes >= 10, "start, three steps scheduled, sent and completed, the end and its result")
        for crashPoint in 0..<writes {
            let run = try await runWithCrash(afterWrites: crashPoint, inMemoryStore: store == "in memory")
            #expect(run.crashed, "crash point \(crashPoint)")
            #expect(try run.output?.decode(CountedWorkflow.Output.self) == Self.output, "crash point \(crashPoint)")
            #expect(run.runs.count == 3 && run.runs.values.allSatisfy { $0 == 1 }, "crash point \(crashPoint): each activity ran once, \(run.runs)")
            #expect(run.results >= 1, "crash point \(crashPoint): the starter got the result")
            #expect(run.journal == .success(3), "crash point \(crashPoint): a whole journal of three commands")
        }
    }

    @Test("a write that fails once, at any point, ends only that run; its relaunch finishes the workflow and runs no step twice", arguments: ["SQLite", "in memory"])
    func writeFailsOnce(store: String) async throws {
        let writes = try await runWithCrash(afterWrites: .max, inMemoryStore: store == "in memory").writes
        for failing in 0..<writes {
            let broker = InMemoryBroker()
            let counter = RunCounter()
            let clock = ManualWallClock()
            let harness = try await CoordinatorHarness(
                workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: fixed),
                transports: .inMemory(broker), clock: clock, startsCoordinator: false, inMemoryStore: store == "in memory"
            )
            let flaky = CrashingStore(harness.store, writesBeforeCrash: failing, recovers: true)
            harness.startCoordinator(store: flaky)
            let results = "starter-results"
            try await harness.requester.declare(Topology(queues: [.init(name: results)]))
            try await harness.sendCommand(.start, WorkflowCommand.Start(workflow: CountedWorkflow.name, workflowID: "flaky", input: Self.input), replyTo: results)
            // The relaunch (and a command put back) wait on the coordinator's clock. Alone an
            // iteration takes a fraction of a second; beside the whole suite one once passed
            // 60 s, so the wait is long, and says where the workflow stood if it runs out.
            do {
                try await waitUntil(timeout: .seconds(180)) {
                    clock.advance(by: .seconds(2))
                    return try await harness.store.workflow(id: "flaky")?.status.isFinished == true && broker.messages(in: results).count >= 1
                }
            } catch let timedOut as WaitTimedOut {
                let status = try await harness.store.workflow(id: "flaky")?.status.rawValue ?? "not created"
                let history = try await harness.store.history(workflowID: "flaky").map { "\($0.kind.rawValue) \($0.stepKey ?? "") \($0.detail)" }
                Issue.record("write \(failing) failing (store writes so far \(flaky.writes), failed \(flaky.failed)): \(timedOut); the workflow is \(status), \(broker.messages(in: results).count) results; history:\n\(history.joined(separator: "\n"))")
                await harness.shutdown()
                return
            }
            let record = try #require(try await harness.store.workflow(id: "flaky"))
            // The number of writes varies a little between runs (re-sends on the manual
            // clock, replies that come together): a run that made fewer never reached it.
            #expect(flaky.failed || flaky.writes <= failing, "write \(failing) failed")
            #expect(try record.output?.decode(CountedWorkflow.Output.self) == Self.output, "write \(failing): \(record.status) \(record.error.map { "\($0)" } ?? "")")
            #expect(counter.all.count == 3 && counter.all.values.allSatisfy { $0 == 1 }, "write \(failing): each activity ran once, \(counter.all)")
            #expect(try await harness.store.checkedJournal("flaky").commands.count == 3, "write \(failing): a whole journal of three commands")
            await harness.shutdown()
        }
    }

    struct CrashRun {
        var writes: Int
        var crashed: Bool
        var output: JSONText?
        var runs: [String: Int]
        var results: Int
        /// The journal's command count, or why it does not hold together.
        var journal: Result<Int, JournalError>
        /// The store, to look at after the run.
        var store: any WorkflowStore
    }

    /// Starts `workflow` (by default `counted`) by command on a coordinator whose store
    /// crashes after `afterWrites` writes, then finishes it on a fresh coordinator, as a
    /// restart after a crash would.
    func runWithCrash(afterWrites: Int, inMemoryStore: Bool, workflow: String = CountedWorkflow.name, input: JSONText = input) async throws -> CrashRun {
        let broker = InMemoryBroker()
        let counter = RunCounter()
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: fixed),
            transports: .inMemory(broker), clock: ManualWallClock(), startsCoordinator: false, inMemoryStore: inMemoryStore
        )
        let doomed = broker.connect(name: "crashing coordinator")
        let crashing = CrashingStore(harness.store, writesBeforeCrash: afterWrites) { doomed.close() }
        harness.startCoordinator(store: crashing, transport: doomed)
        let results = "starter-results"
        try await harness.requester.declare(Topology(queues: [.init(name: results)]))
        try await harness.sendCommand(.start, WorkflowCommand.Start(workflow: workflow, workflowID: "crash", input: input), replyTo: results)
        try await waitUntil {
            if crashing.crashed { return true }
            let status = try await harness.store.workflow(id: "crash")?.status
            return status == .completed && broker.messages(in: results).count >= 1
        }
        await harness.stopCoordinator()
        harness.startCoordinator(transport: broker.connect(name: "restarted coordinator"))
        let record = try await harness.waitFor("crash", [.completed, .failed], timeout: .seconds(120))
        try await waitUntil { broker.messages(in: results).count >= 1 }
        let entries = try await harness.store.journal(workflowID: "crash")
        let run = CrashRun(
            writes: crashing.writes, crashed: crashing.crashed, output: record.output,
            runs: counter.all, results: broker.messages(in: results).count,
            journal: Result { () throws(JournalError) in try WorkflowJournal(entries).commands.count },
            store: harness.store
        )
        await harness.shutdown()
        return run
    }
}

/// `counted_echo` once, with no timers, for tests of re-sends.
struct SleeplessEcho: Workflow {
    static let name = "sleepless_echo"

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> CountedEcho.Payload {
        try await context.execute(CountedEcho.self, input)
    }
}

extension JSONText {
    static let emptyObjectForTests = try! JSONText(validating: "{}")
}

extension ManualWallClock {
    /// Moves the clock on once `sleepers` tasks (the coordinator's supervision loop, and a
    /// workflow's timer when there is one) sleep on it: a task that goes to sleep just after
    /// an advance would count its wait from the new time and never be woken.
    func advanceWhenAsleep(by duration: Duration, sleepers: Int = 1) async throws {
        try await waitUntil { sleeperCount >= sleepers }
        advance(by: duration)
    }
}

extension WorkflowStore {
    /// The workflow's journal, checked entry by entry by the journal's own rules.
    func checkedJournal(_ workflowID: String) async throws -> WorkflowJournal {
        try WorkflowJournal(try await journal(workflowID: workflowID))
    }

    /// Appends events after the workflow's journal as it stands, once they pass its rules:
    /// what a coordinator does, for tests that write to a store directly.
    @discardableResult
    func appendChecked(_ events: [WorkflowEvent], to workflowID: String, at now: Date) async throws -> WorkflowJournal {
        var journal = try await checkedJournal(workflowID)
        let expected = journal.lastSequence
        for event in events { try journal.apply(JournalEntry(sequence: journal.nextSequence, epoch: 0, recordedAt: now, event: event)) }
        try await append(events, to: workflowID, expectedSequence: expected, epoch: 0, at: now)
        return journal
    }
}
