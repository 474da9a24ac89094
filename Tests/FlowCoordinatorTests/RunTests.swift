import FlowCoordinator
import FlowCore
import FlowTesting
import FlowTransport
import Foundation
import Testing

/// A workflow's runs through the coordinator: continue-as-new from its code, and an
/// operator's reset, each ending one run and starting the next under the same id.
@Suite("continue-as-new and reset")
struct RunTests {
    let counter = RunCounter()

    func harness(_ broker: InMemoryBroker, inMemoryStore: Bool = false) async throws -> CoordinatorHarness {
        try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: Switch()),
            transports: .inMemory(broker), clock: ManualWallClock(), inMemoryStore: inMemoryStore
        )
    }

    func signal(_ harness: CoordinatorHarness, _ workflowID: String, _ word: String, id: String) async throws -> SignalOutcome {
        try await harness.coordinator.signal(workflowID: workflowID, name: Nudge.name, input: try JSONText(encoding: word), signalID: id)
    }

    /// Starts a `resettable` workflow, waits for its two steps, and signals it "x".
    func startResettable(_ harness: CoordinatorHarness, id: String) async throws {
        try await harness.coordinator.start(workflow: ResettableWorkflow.name, id: id, input: try JSONText(encoding: CountedEcho.Payload(value: "-")), recipient: nil)
        try await waitUntil { counter.all.count == 2 }
        #expect(try await signal(harness, id, "x", id: "x") == .recorded)
    }

    @Test("a workflow that continues as new runs on under its id with a journal per run: signals it had not taken go to the next run, each run's steps are their own, and the starter gets the last run's result once", arguments: ["SQLite", "in memory"])
    func continueAsNew(store: String) async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker, inMemoryStore: store == "in memory")
        let results = "looping-results"
        try await harness.requester.declare(Topology(queues: [.init(name: results)]))
        try await harness.coordinator.start(
            workflow: LoopingWorkflow.name, id: "looping", input: try JSONText(encoding: LoopingWorkflow.State()), recipient: ResultRecipient(replyTo: results, correlationID: "c")
        )
        for (index, word) in ["a", "b", "c"].enumerated() {
            #expect(try await signal(harness, "looping", word, id: "s\(index)") == .recorded)
        }
        // The first run took two words and continued; a restart comes in the second.
        try await waitUntil { (try? await harness.store.workflow(id: "looping"))?.run == 2 }
        await harness.stopCoordinator()
        harness.startCoordinator()
        #expect(try await signal(harness, "looping", "a", id: "s0") == .duplicate, "a signal the run before took, sent again, counts once")
        for (index, word) in ["d", "e"].enumerated() {
            #expect(try await signal(harness, "looping", word, id: "s\(index + 3)") == .recorded)
        }
        let record = try await harness.waitFor("looping", [.completed, .failed])
        #expect(try record.output?.decode([String].self) == ["a", "b", "c", "d", "e"])
        #expect(record.run == 3, "\(record.error.map { "\($0)" } ?? "")")

        let runs = try await harness.store.runs(of: "looping")
        #expect(runs.map(\.id) == ["looping@run-1", "looping@run-2", "looping"])
        #expect(runs.map(\.status) == [.continuedAsNew, .continuedAsNew, .completed])
        #expect(try await harness.store.runs(of: "looping@run-1").map(\.id) == runs.map(\.id), "asked of an old run, the chain is the same")
        let first = try await harness.store.checkedJournal("looping@run-1")
        #expect(first.entries.last?.event.kind == "workflow_continued_as_new")
        #expect(first.signalIDs == ["s0", "s1", "s2"], "the first run recorded three signals")
        let second = try await harness.store.checkedJournal("looping@run-2")
        #expect(second.entries.prefix(2).map(\.event.kind) == ["workflow_started", "signal_received"], "and handed the one it had not taken to the next")
        #expect(second.signalIDs.isSuperset(of: ["s2"]))
        let old = try #require(try await harness.store.workflow(id: "looping@run-1"))
        #expect(old.chainID == "looping" && old.run == 1 && old.status == .continuedAsNew)

        // Each run's steps have message ids of their own, so no worker answers a later
        // run's step with an earlier run's result; each ran once.
        #expect(Set(counter.all.keys) == [
            "looping/counted_echo@0", "looping/counted_echo@1", "looping/run-2.counted_echo@0", "looping/run-2.counted_echo@1", "looping/run-3.counted_echo@0",
        ], "\(counter.all)")
        #expect(counter.all.values.allSatisfy { $0 == 1 }, "\(counter.all)")
        try await waitUntil { !broker.messages(in: results).isEmpty }
        let delivered = broker.messages(in: results).map { try? FlowJSON.decode(WorkflowResult.self, from: Data($0.body)) }
        #expect(delivered.count == 1 && delivered.first??.status == .completed, "one result, the last run's: \(delivered)")
        #expect(harness.coordinator.statistics.count(.workflowContinuedAsNew) >= 1)
        await harness.shutdown()
    }

    @Test("a reset of a finished workflow runs it again from the command it names, keeping or dropping the signals that came after; the runs before keep their ends", arguments: ["SQLite", "in memory"])
    func resetFinished(store: String) async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker, inMemoryStore: store == "in memory")
        try await startResettable(harness, id: "r")
        #expect(try await signal(harness, "r", "stop", id: "stop") == .recorded)
        let done = try await harness.waitFor("r", [.completed])
        #expect(try done.output?.decode([String].self) == ["a", "b", "x"])

        // A position the journal does not have is refused, and changes nothing.
        await #expect { try await harness.coordinator.reset(workflowID: "r", to: 9, reason: "test") } throws: { error in
            (error as? ActivityFailure)?.type == ActivityFailure.Kind.invalidInput.rawValue && "\(error)".contains("commands 0 to 1")
        }
        #expect(try await harness.store.runs(of: "r").count == 1)
        #expect(try await harness.coordinator.reset(workflowID: "nobody", to: 0, reason: "test") == nil)

        // Cut back to before "b": it runs again, and the signals after the cut arrive again.
        let second = try #require(try await harness.coordinator.reset(workflowID: "r", to: 1, reason: "b was wrong"))
        #expect(second.run == 2 && second.id == "r")
        let again = try await harness.waitFor("r", [.completed])
        #expect(try again.output?.decode([String].self) == ["a", "b", "x"])
        #expect(counter.all == ["r/counted_echo@0": 1, "r/counted_echo@1": 1, "r/run-2.counted_echo@1": 1], "only b ran again")

        // The second run received its signals before it issued "b": they are before any cut
        // at 1. Cut back to the start, dropping the signals after it: the third run runs
        // both steps again and waits for new signals.
        _ = try await harness.coordinator.reset(workflowID: "r", to: 0, keepSignals: false, reason: "forget the words")
        try await waitUntil { counter.all["r/run-3.counted_echo@1"] == 1 }
        #expect(counter.all["r/run-3.counted_echo@0"] == 1)
        #expect(try await harness.store.workflow(id: "r")?.status == .running)
        #expect(try await signal(harness, "r", "stop", id: "stop-3") == .recorded)
        let third = try await harness.waitFor("r", [.completed])
        #expect(try third.output?.decode([String].self) == ["a", "b"])

        let runs = try await harness.store.runs(of: "r")
        #expect(runs.map(\.id) == ["r@run-1", "r@run-2", "r"])
        #expect(runs.map(\.status) == [.completed, .completed, .completed], "a run that had ended keeps its end")
        let history = try await harness.store.history(workflowID: "r")
        #expect(history.first?.detail.contains("run 3, after run 2 (r@run-2)") == true, "\(history.first?.detail ?? "")")
        await harness.shutdown()
    }

    @Test("a reset of a workflow running here stops its run where it stands and starts the next from the cut; a signal sent again to the next run counts once", arguments: ["SQLite", "in memory"])
    func resetRunning(store: String) async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker, inMemoryStore: store == "in memory")
        try await startResettable(harness, id: "live")

        let next = try #require(try await harness.coordinator.reset(workflowID: "live", to: 0, reason: "from the top"))
        #expect(next.run == 2)
        try await waitUntil { counter.all.count == 4 }
        #expect(try await signal(harness, "live", "x", id: "x") == .duplicate, "the next run has the signal, under its id")
        #expect(try await signal(harness, "live", "stop", id: "stop") == .recorded)
        let record = try await harness.waitFor("live", [.completed])
        #expect(try record.output?.decode([String].self) == ["a", "b", "x"])
        #expect(Set(counter.all.keys) == ["live/counted_echo@0", "live/counted_echo@1", "live/run-2.counted_echo@0", "live/run-2.counted_echo@1"])

        let old = try #require(try await harness.store.workflow(id: "live@run-1"))
        #expect(old.status == .reset && old.error?.message.contains("from the top") == true)
        #expect(try await harness.store.checkedJournal("live@run-1").entries.last?.event == .workflowReset(position: 0, reason: "from the top"))
        #expect(harness.coordinator.statistics.count(.workflowReset) == 1)
        await harness.shutdown()
    }
}
