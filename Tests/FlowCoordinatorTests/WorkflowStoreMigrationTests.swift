import FlowCoordinator
import FlowCore
import FlowRuntime
import FlowTesting
import FlowWorkflows
import Foundation
import GRDB
import Testing

/// Stores written before the schema was versioned open, migrate in place and keep working.
@Suite("workflow store migrations")
struct WorkflowStoreMigrationTests {
    /// `Fixtures/workflow-store-v0.sql` is `sqlite3 .dump` of a store the coordinator wrote
    /// before migrations were recorded: two running workflows (one with a finished step, a
    /// sent step and a timer; one parked), a finished one, a recipient and a schedule.
    func oldStore() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-store-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("workflows.sqlite").path
        let dump = try String(contentsOf: Repository.file("Tests/FlowCoordinatorTests/Fixtures/workflow-store-v0.sql"), encoding: .utf8)
        let database = try DatabaseQueue(path: path)
        try database.writeWithoutTransaction { try $0.execute(sql: dump) }
        try database.close()
        return path
    }

    @Test("a store from before versioned migrations opens with every record as it was written")
    func oldStoreReads() async throws {
        let store = try SQLiteWorkflowStore(path: try oldStore())
        #expect(try store.appliedMigrations() == SQLiteWorkflowStore.migrationNames)
        let unfinished = try await store.unfinishedWorkflows()
        #expect(unfinished.map(\.id) == ["old-1", "old-2"])
        #expect(unfinished.map(\.status) == [.running, .parked])
        #expect(unfinished[1].parkedReason?.contains("NotReady") == true)
        let finished = try #require(try await store.workflow(id: "old-3"))
        #expect(finished.status == .completed)
        #expect(finished.finishedAt == Date(timeIntervalSince1970: 1_790_000_009))
        #expect(finished.output?.text == #"{"first":"z","left":"z-left","right":"z-right"}"#)

        let steps = try await store.steps(workflowID: "old-1")
        #expect(steps.map(\.status) == [.completed, .scheduled])
        #expect(steps[0].result?.text == #"{"value":"a"}"#)
        #expect(steps[0].options.startToCloseTimeout == .seconds(30))
        #expect(steps[0].options.maximumResends == 2)
        #expect(steps[1].sentAt == Date(timeIntervalSince1970: 1_790_000_003))
        let parked = try #require(try await store.step(messageID: "old-2/needs_a_fix#0#1"))
        #expect(parked.error?.type == "NotReady")
        #expect(try await store.recipients(workflowID: "old-1") == [ResultRecipient(replyTo: "starter", correlationID: "c-1")])
        let timers = try await store.dueTimers(until: Date(timeIntervalSince1970: 1_790_000_007), limit: 10)
        #expect(timers == [DueTimer(workflowID: "old-1", position: 2, key: "sleep#3000ms#1", fireAt: Date(timeIntervalSince1970: 1_790_000_007))], "the recorded fire time")
        #expect(try await store.schedules().map(\.name) == ["nightly"])
        let history = try await store.history(workflowID: "old-1").map(\.kind)
        #expect(history == [.workflowStarted, .activityScheduled, .activityCompleted, .activityScheduled, .timerStarted])
    }

    @Test("an old store's workflows get journals from their rows, their commands in the order the old history recorded them")
    func oldStoreJournals() async throws {
        let store = try SQLiteWorkflowStore(path: try oldStore())
        func kinds(_ journal: WorkflowJournal) -> [String] {
            journal.entries.map { "\($0.event.kind)@\($0.event.position.map(String.init) ?? "-")" }
        }
        let running = try await store.checkedJournal("old-1")
        #expect(kinds(running) == ["workflow_started@-", "activity_scheduled@0", "activity_completed@0", "activity_scheduled@1", "timer_started@2"])
        #expect(running.status == .running)
        #expect(running.commands[2] == .timer(key: "sleep#3000ms#1", fireAt: Date(timeIntervalSince1970: 1_790_000_007), fired: false))
        guard case .activity(let first, .completed(let output)) = running.commands[0] else { Issue.record("\(running.commands)"); return }
        #expect(first.stepKey == "counted_echo#abc#1" && first.options.startToCloseTimeout == .seconds(30))
        #expect(output.text == #"{"value":"a"}"#)

        let parked = try await store.checkedJournal("old-2")
        #expect(kinds(parked) == ["workflow_started@-", "activity_scheduled@0", "activity_parked@0"])
        #expect(parked.status == .parked)
        let finished = try await store.checkedJournal("old-3")
        #expect(finished.entries.map(\.event) == [
            .workflowStarted(name: "counted", input: try JSONText(validating: #"{"value":"z"}"#)),
            .workflowCompleted(output: try JSONText(validating: #"{"first":"z","left":"z-left","right":"z-right"}"#)),
        ])

        // The upgraded workflows go on where they stood: the next answers and commands
        // follow their journals.
        let at = Date(timeIntervalSince1970: 1_790_000_100)
        try await store.appendChecked([.activityCompleted(position: 1, attempt: 1, output: try JSONText(validating: #"{"value":"a-left"}"#))], to: "old-1", at: at)
        try await store.appendChecked([.activityCompleted(position: 0, attempt: 2, output: try JSONText(validating: #"{"fixed":true}"#))], to: "old-2", at: at)
        try await store.appendChecked([.timerStarted(position: 1, key: "sleep@1", fireAt: at.addingTimeInterval(1))], to: "old-2", at: at)
        #expect(kinds(try await store.checkedJournal("old-1")).suffix(1) == ["activity_completed@1"])
        let resumed = try await store.checkedJournal("old-2")
        #expect(kinds(resumed).suffix(2) == ["activity_completed@0", "timer_started@1"])
        #expect(resumed.status == .running)
    }

    @Test("a migrated old store takes new facts: a step completes, a parked workflow unparks, and it ends")
    func oldStoreWrites() async throws {
        let path = try oldStore()
        let store = try SQLiteWorkflowStore(path: path)
        let at = Date(timeIntervalSince1970: 1_790_000_100)
        // The journal finds each step by its old key, and decides as it would for a new one.
        let first = try await store.checkedJournal("old-1")
        let position = try #require(first.position(ofStep: "counted_echo#def#1"))
        let completed = WorkflowEvent.activityCompleted(position: position, attempt: 1, output: try JSONText(validating: #"{"value":"a-left"}"#))
        #expect(first.answering(completed) == .record)
        try await store.appendChecked([completed], to: "old-1", at: at)
        #expect(try await store.step(messageID: "old-1/counted_echo#def#1")?.status == .completed)
        #expect(try await store.checkedJournal("old-1").answering(completed) == .duplicate)
        try await store.appendChecked([.activityCompleted(position: 0, attempt: 2, output: try JSONText(validating: #"{"fixed":true}"#))], to: "old-2", at: at)
        #expect(try await store.workflow(id: "old-2")?.status == .running)
        #expect(try await store.history(workflowID: "old-2").last?.kind == .workflowUnparked)
        try await store.appendChecked([.workflowCompleted(output: .init(validating: "{}"))], to: "old-1", at: at)
        #expect(try await store.finishedWithRecipients().map(\.id) == ["old-1"])
        #expect(try await store.recipients(workflowID: "old-1") == [ResultRecipient(replyTo: "starter", correlationID: "c-1")])
        // Opening it again applies nothing twice.
        let reopened = try SQLiteWorkflowStore(path: path)
        #expect(try reopened.appliedMigrations() == SQLiteWorkflowStore.migrationNames)
        #expect(try await reopened.workflow(id: "old-1")?.status == .completed)
    }

    @Test("a new store has every migration, and the same tables as one migrated from the old layout")
    func newAndMigratedAgree() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-store-\(UUID().uuidString.prefix(8))")
        let fresh = try SQLiteWorkflowStore(path: folder.appendingPathComponent("workflows.sqlite").path)
        #expect(try fresh.appliedMigrations() == SQLiteWorkflowStore.migrationNames)
        func schema(_ path: String) throws -> [String] {
            try DatabaseQueue(path: path).read { db in
                try String.fetchAll(db, sql: "SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%' ORDER BY name")
            }
        }
        let migrated = try oldStore()
        _ = try SQLiteWorkflowStore(path: migrated)
        #expect(try schema(folder.appendingPathComponent("workflows.sqlite").path) == schema(migrated))
    }
}

/// `echo` as the default worker has it, counting each run by message id.
struct CountingEcho: Activity {
    static let name = "echo"
    static let queue = WorkQueue.default
    typealias Input = JSONText
    typealias Output = JSONText
    let counter: RunCounter

    func run(_ input: JSONText, context: ActivityContext) async throws -> JSONText {
        counter.record(context.messageID)
        return input
    }
}

/// A store the last release before the journal wrote, upgraded in place by this one.
@Suite("upgrading a store written before the journal")
struct JournalUpgradeTests {
    /// `Fixtures/workflow-store-v4.sql` is `sqlite3 .dump` of the store that `flow coordinator`
    /// of 5ac74f1 (the release before the journal) wrote, with its worker, for:
    /// - `upgrade-completed`: echo_chain of 2 steps, completed;
    /// - `upgrade-sleeping`: echo_chain of 3 steps with 2-hour pauses, its first step done,
    ///   asleep;
    /// - `upgrade-parked`: document_onboarding of a missing file, parked on its first step;
    /// - `upgrade-running`: echo_chain of 2 steps, its first step sent to a worker that was
    ///   killed before it answered.
    @Test("open, sleeping and parked workflows carry on after the upgrade, and no finished step runs again")
    func upgradeCarriesOn() async throws {
        let counter = RunCounter()
        var activities = ActivityRegistry()
        activities.register(CountingEcho(counter: counter))
        let clock = ManualWallClock()
        let harness = try await CoordinatorHarness(
            workflows: ApplicationWorkflows.registry(), activities: activities, transports: .inMemory(InMemoryBroker()), clock: clock,
            storeFixture: "workflow-store-v4.sql"
        )
        #expect(try (harness.store as? SQLiteWorkflowStore)?.appliedMigrations() == SQLiteWorkflowStore.migrationNames)
        func kinds(_ id: String) async throws -> [String] {
            try await harness.store.checkedJournal(id).entries.map { "\($0.event.kind)@\($0.event.position.map(String.init) ?? "-")" }
        }
        #expect(try await kinds("upgrade-completed") == [
            "workflow_started@-", "activity_scheduled@0", "activity_completed@0", "activity_scheduled@1", "activity_completed@1", "workflow_completed@-",
        ])
        #expect(try await kinds("upgrade-sleeping") == ["workflow_started@-", "activity_scheduled@0", "activity_completed@0", "timer_started@1"])
        #expect(try await kinds("upgrade-parked") == ["workflow_started@-", "activity_scheduled@0", "activity_parked@0"])
        #expect(try await kinds("upgrade-running").prefix(2) == ["workflow_started@-", "activity_scheduled@0"])

        // Two-hour sleeps and an overdue step: the clock moves on an hour at a time while
        // the coordinator sleeps on it, until both echo chains are done.
        try await waitUntil(timeout: .seconds(120)) {
            let sleeping = try await harness.store.workflow(id: "upgrade-sleeping")?.status
            let running = try await harness.store.workflow(id: "upgrade-running")?.status
            if sleeping == .completed, running == .completed { return true }
            try await clock.advanceWhenAsleep(by: .seconds(3600))
            return false
        }
        #expect(try await harness.store.workflow(id: "upgrade-sleeping")?.output?.text == #"{"steps":3,"text":"sleeping"}"#)
        #expect(try await harness.store.workflow(id: "upgrade-running")?.output?.text == #"{"steps":2,"text":"running"}"#)
        let runs = counter.all
        #expect(runs["upgrade-sleeping/echo#c533a7797e3d2986#1"] == nil, "the step finished before the upgrade did not run again: \(runs)")
        #expect(runs["upgrade-running/echo#cf32e43da42151c8#1"] == 1, "the step sent before the upgrade ran once, under its old id: \(runs)")
        #expect(runs["upgrade-sleeping/echo@2"] == 1 && runs["upgrade-sleeping/echo@4"] == 1, "the new steps take positional ids: \(runs)")
        #expect(runs.count == 4, "\(runs)")

        // The parked workflow is still parked for its reason, and an operator can end it.
        let parked = try #require(try await harness.store.workflow(id: "upgrade-parked"))
        #expect(parked.status == .parked && parked.parkedReason?.contains("DocumentNotFound") == true)
        try await harness.coordinator.cancel(workflowID: "upgrade-parked", reason: "the document is gone")
        #expect(try await harness.waitFor("upgrade-parked", [.cancelled]).status == .cancelled)
        #expect(try await kinds("upgrade-parked").suffix(2) == ["cancel_requested@-", "workflow_cancelled@-"])
        await harness.shutdown()
    }
}
