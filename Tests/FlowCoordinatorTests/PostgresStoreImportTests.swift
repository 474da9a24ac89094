import FlowCoordinator
import FlowCore
import FlowPostgres
import FlowTesting
import Foundation
import Testing

/// `flow store migrate`: a SQLite store moved into PostgreSQL reads back the same through
/// the store's own calls, and the coordinator carries on writing to it.
@Suite("moving a SQLite store into PostgreSQL")
struct PostgresStoreImportTests {
    typealias Conformance = WorkflowStoreConformance

    /// A SQLite store with every kind of row: the conformance script's workflow `w`
    /// (steps, timers, notes, a park, an end), `r` continued as new once (so `r@run-1`),
    /// search attributes, a memo, a recipient still owed, and a schedule with run state.
    static func filledSQLiteStore() async throws -> SQLiteWorkflowStore {
        let store = try await Conformance.play(.sqlite, writes: Conformance.script.count, crashing: false) as! SQLiteWorkflowStore
        let at = Conformance.at
        _ = try await store.create(WorkflowStart(id: "r", name: "counted", input: Conformance.input, recipient: ResultRecipient(replyTo: "q", correlationID: "c")), epoch: 0, at: at)
        try await store.append([
            .markerRecorded(position: 0, name: "search_attributes", value: try JSONText(validating: #"{"customer":"acme","amount":12.5,"urgent":true}"#)),
            .markerRecorded(position: 1, name: "memo", value: try JSONText(validating: #"{"note":"first"}"#)),
        ], to: "r", expectedSequence: 1, epoch: 0, at: at.addingTimeInterval(1))
        let next = [JournalEntry(sequence: 1, epoch: 0, recordedAt: at.addingTimeInterval(2), event: .workflowStarted(name: "counted", input: try JSONText(encoding: ["run": 2])))]
        _ = try await store.startNextRun(
            of: "r", closing: .workflowContinuedAsNew(input: Conformance.input), journal: next, childrenFrom: 0, requestID: "again", expectedSequence: 3, epoch: 0, at: at.addingTimeInterval(2))
        try await store.append([Conformance.scheduled(0)], to: "r", expectedSequence: 1, epoch: 0, at: at.addingTimeInterval(3))
        try await store.append([.timerStarted(position: 1, key: "sleep@1", fireAt: at.addingTimeInterval(60))], to: "r", expectedSequence: 2, epoch: 0, at: at.addingTimeInterval(3))
        var schedule = ScheduleRecord(name: "nightly", workflow: "counted", input: Conformance.input, cron: "0 3 * * *", nextRunAt: at.addingTimeInterval(3600), runs: 0, overlap: .bufferOne, jitterSeconds: 30)
        try await store.upsertSchedule(schedule)
        schedule.runs = 4
        schedule.lastRunAt = at
        schedule.buffered = [at.addingTimeInterval(10)]
        schedule.lastWorkflowID = "nightly-4"
        schedule.skipped = 1
        try await store.recordScheduleState(schedule)
        return store
    }

    /// What a store shows through its own calls, as text to compare.
    static func view(_ store: any WorkflowStore) async throws -> [String] {
        var lines: [String] = []
        for id in ["w", "r", "r@run-1"] {
            lines.append("\(try await store.workflow(id: id).map { "\($0)" } ?? "none")")
            lines += try await store.steps(workflowID: id).map { "\($0)" }
            lines += try await store.history(workflowID: id).map { "\($0.at.timeIntervalSince1970) \($0.kind.rawValue) \($0.stepKey ?? "-") \($0.detail)" }
            lines += try await store.journal(workflowID: id).map { "\($0)" }
            let attributes = try await store.attributes(workflowID: id)
            lines.append("\(attributes.search.sorted { $0.key < $1.key }) \(attributes.memo?.text ?? "-")")
            lines.append("\(try await store.recipients(workflowID: id))")
        }
        lines.append("\(try await store.runs(of: "r").map(\.id))")
        lines.append("\(try await store.schedules())")
        lines.append("\(try await store.unfinishedWorkflows().map(\.id))")
        lines.append("\(try await store.dueTimers(until: Conformance.at.addingTimeInterval(86_400), limit: 10))")
        lines.append("\(try await store.workflows(matching: WorkflowFilter(), after: nil, limit: 10).map(\.id))")
        return lines
    }

    @Test("every row moves: the PostgreSQL store shows what the SQLite one showed, takes the next write, and a second copy into it is refused")
    func copiesEverything() async throws {
        let source = try await Self.filledSQLiteStore()
        let destination = try await PostgresWorkflowStore.open(try await TestPostgres.newDatabase(), maximumConnections: 2, logger: TestPostgres.logger)
        let counts = try await PostgresStoreImport.copy(from: source, to: destination)
        #expect(counts.allSatisfy { $0.source == $0.destination })
        #expect(counts.first { $0.table == "workflow" }?.source == 3)
        let (moved, original) = (try await Self.view(destination), try await Self.view(source))
        #expect(moved.count == original.count)
        for (movedLine, originalLine) in zip(moved, original) { #expect(movedLine == originalLine) }

        // The journal goes on where it stopped, and new history lines come after the old.
        let lastHistory = try #require(try await destination.history(workflowID: "r", after: nil, limit: .max).last?.sequence)
        try await destination.append([.activityCompleted(position: 0, attempt: 1, output: Conformance.input)], to: "r", expectedSequence: 3, epoch: 0, at: Conformance.at.addingTimeInterval(5))
        #expect(try await destination.history(workflowID: "r", after: lastHistory, limit: 10).map(\.event.kind) == [.activityCompleted])
        await #expect {
            try await destination.append([.timerFired(position: 1)], to: "r", expectedSequence: 3, epoch: 0, at: Conformance.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .sequenceConflict }

        await #expect {
            try await PostgresStoreImport.copy(from: source, to: destination)
        } throws: { "\($0)".contains("migrate into an empty store") }
        #expect(try await destination.countWorkflows(matching: WorkflowFilter()) == 3, "the refused copy added nothing")
        await destination.close()
    }

    @Test("flow store migrate copies a coordinator's SQLite file and prints the counts; a PostgreSQL source or a missing file is refused with the reason")
    func commandLine() async throws {
        let source = try await Self.filledSQLiteStore()
        let url = try await TestPostgres.newDatabase().url
        let copied = try await ProcessRunner.run(Repository.flowExecutable.path, ["store", "migrate", "--from", "sqlite:\(source.path)", "--to", url])
        #expect(copied.status == 0, "\(copied.standardError)")
        #expect(copied.standardOutput.contains("rows, the same on both sides: workflow 3, workflow_event"), "\(copied.standardOutput)")
        let listed = try await ProcessRunner.run(Repository.flowExecutable.path, ["workflow", "list", "--store", url])
        #expect(listed.status == 0 && listed.standardOutput.contains("r@run-1"), "\(listed.standardOutput)\(listed.standardError)")

        let backwards = try await ProcessRunner.run(Repository.flowExecutable.path, ["store", "migrate", "--from", url, "--to", url])
        #expect(backwards.status != 0 && backwards.standardError.contains("--from must name a SQLite store"), "\(backwards.standardError)")
        let missing = try await ProcessRunner.run(Repository.flowExecutable.path, ["store", "migrate", "--from", "sqlite:/nonexistent/workflows.sqlite", "--to", url])
        #expect(missing.status != 0 && missing.standardError.contains("no workflow store at /nonexistent/workflows.sqlite"), "\(missing.standardError)")
    }
}
