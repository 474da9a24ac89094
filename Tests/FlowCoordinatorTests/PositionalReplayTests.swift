import FlowCoordinator
import FlowCore
import FlowTesting
import Foundation
import Synchronization
import Testing

/// Commands are identified by their position in the workflow's sequence of commands: a
/// changed input replays, a changed command parks the workflow with the reason, and
/// values drawn once (`now`, `uuid()`, `sideEffect`) are read back.
@Suite("positional replay of workflow code")
struct PositionalReplayTests {
    let counter = RunCounter()
    let fixed = Switch()

    /// A deploy of `version` of the `evolving` workflow: step, sleep 3 s, step, as version 1
    /// has it; the others change it in one of the ways the replay must notice or allow.
    struct Evolving: Workflow {
        static let name = "evolving"
        enum Version: Sendable { case original, changedInput, activityForTimer, removedSleep, clockRead(after: Threshold) }
        let version: Version

        func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> String {
            let first: CountedEcho.Payload
            switch version {
            case .changedInput:
                first = try await context.execute(CountedEcho.self, .init(value: input.value + " (a field the new input type adds)"))
            case .clockRead(let after) where Date() > after.date:
                // Deciding on the wall clock: the replay, later, takes the other branch.
                _ = try await context.execute(NeedsAFix.self, Empty())
                first = input
            default:
                first = try await context.execute(CountedEcho.self, input)
            }
            switch version {
            case .activityForTimer: _ = try await context.execute(CountedEcho.self, .init(value: "instead of the sleep"))
            case .removedSleep: break
            default: try await context.sleep(for: .seconds(3))
            }
            return try await context.execute(CountedEcho.self, .init(value: first.value + "!")).value
        }
    }

    func registry(_ version: Evolving.Version) -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(Evolving(version: version))
        return registry
    }

    /// Runs `first` (by default the original) up to its sleep, stops the coordinator, and
    /// starts `version` in its place.
    func deploy(
        _ version: Evolving.Version, first: Evolving.Version = .original, id: String, beforeRestart: () -> Void = {}
    ) async throws -> (CoordinatorHarness, ManualWallClock) {
        let clock = ManualWallClock()
        let harness = try await CoordinatorHarness(
            workflows: registry(first), activities: TestWorkflows.activities(counter: counter, fixed: fixed), transports: .inMemory(InMemoryBroker()), clock: clock
        )
        try await harness.coordinator.start(workflow: Evolving.name, id: id, input: try JSONText(encoding: CountedEcho.Payload(value: "a")), recipient: nil)
        try await waitUntil { try await harness.store.checkedJournal(id).commands.count == 2 }
        await harness.stopCoordinator()
        beforeRestart()
        harness.startCoordinator(workflows: registry(version))
        return (harness, clock)
    }

    @Test("a changed input replays the recorded step instead of running it again")
    func changedInputReplays() async throws {
        let (harness, clock) = try await deploy(.changedInput, id: "input")
        try await clock.advanceWhenAsleep(by: .seconds(3), sleepers: 2)
        let record = try await harness.waitFor("input", [.completed, .failed, .parked], timeout: .seconds(120))
        #expect(record.status == .completed)
        #expect(try record.output?.decode(String.self) == "a!", "the recorded output of the first step, not a new one")
        #expect(counter.all.count == 2 && counter.all.values.allSatisfy { $0 == 1 }, "\(counter.all)")
        await harness.shutdown()
    }

    @Test("a different command at a recorded position parks the workflow with a reason naming both, and runs nothing")
    func divergenceParks() async throws {
        try await expectParked(
            try await deploy(.activityForTimer, id: "diverged").0,
            "at position 1 its journal records a timer (sleep@1), but the code asked for activity counted_echo"
        )
    }

    @Test("code that decides on the wall clock takes another branch on the replay, which parks the workflow")
    func clockReadParks() async throws {
        // The first run reads a time before the threshold; the replay, one after it.
        let threshold = Threshold(.distantFuture)
        let readsTheClock = Evolving.Version.clockRead(after: threshold)
        try await expectParked(
            try await deploy(readsTheClock, first: readsTheClock, id: "diverged", beforeRestart: { threshold.date = .distantPast }).0,
            "at position 0 its journal records activity counted_echo, but the code asked for activity needs_a_fix"
        )
    }

    private func expectParked(_ harness: CoordinatorHarness, _ reason: String) async throws {
        let parked = try await harness.waitFor("diverged", [.parked, .completed, .failed], timeout: .seconds(120))
        #expect(parked.status == .parked)
        #expect(parked.parkedReason?.hasPrefix(WorkflowNondeterminism.reasonPrefix) == true)
        #expect(parked.parkedReason?.contains(reason) == true, "\(parked.parkedReason ?? "")")
        #expect(counter.all.count == 1, "nothing was sent for the changed code: \(counter.all)")
        #expect(try await harness.store.checkedJournal("diverged").commands.count == 2, "and nothing recorded")
        await harness.shutdown()
    }

    @Test("a removed step is a divergence too, and a deploy of code that replays takes the parked workflow up again")
    func removedStepThenFixed() async throws {
        let (harness, clock) = try await deploy(.removedSleep, id: "removed")
        let parked = try await harness.waitFor("removed", [.parked, .completed, .failed], timeout: .seconds(120))
        #expect(parked.parkedReason?.contains("at position 1 its journal records a timer (sleep@1), but the code asked for activity counted_echo") == true, "\(parked.parkedReason ?? "")")
        await harness.stopCoordinator()
        harness.startCoordinator(workflows: registry(.original))
        try await waitUntil { try await harness.store.workflow(id: "removed")?.status == .running }
        try await clock.advanceWhenAsleep(by: .seconds(3), sleepers: 2)
        let record = try await harness.waitFor("removed", [.completed, .failed], timeout: .seconds(120))
        #expect(try record.output?.decode(String.self) == "a!")
        #expect(counter.all.count == 2 && counter.all.values.allSatisfy { $0 == 1 }, "\(counter.all)")
        await harness.shutdown()
    }

    /// Reads `now`, a UUID and a side effect, sleeps, and returns what it read.
    struct Drawing: Workflow {
        static let name = "drawing"
        struct Drawn: Codable, Sendable, Equatable {
            var now: Date
            var id: UUID
            var number: Double
        }

        func run(context: WorkflowContext, input: Empty) async throws -> Drawn {
            let drawn = Drawn(now: try context.now, id: try context.uuid(), number: try context.random(in: 0..<1))
            try await context.sleep(for: .seconds(3))
            return drawn
        }
    }

    @Test("now, uuid() and random are drawn once and read back after a restart")
    func markersReplay() async throws {
        let clock = ManualWallClock()
        var registry = WorkflowRegistry()
        registry.register(Drawing())
        let harness = try await CoordinatorHarness(
            workflows: registry, activities: TestWorkflows.activities(counter: counter, fixed: fixed), transports: .inMemory(InMemoryBroker()), clock: clock
        )
        try await harness.coordinator.start(workflow: Drawing.name, id: "drawing", input: .emptyObjectForTests, recipient: nil)
        try await waitUntil { try await harness.store.checkedJournal("drawing").commands.count == 4 }
        await harness.stopCoordinator()
        clock.advance(by: .seconds(1))
        harness.startCoordinator()
        try await clock.advanceWhenAsleep(by: .seconds(2), sleepers: 2)
        let record = try await harness.waitFor("drawing", [.completed, .failed], timeout: .seconds(120))
        let drawn = try #require(try record.output?.decode(Drawing.Drawn.self))
        let journal = try await harness.store.checkedJournal("drawing")
        guard case .marker("now", let now) = journal.commands[0], case .marker("uuid", let id) = journal.commands[1],
            case .marker("random", let number) = journal.commands[2]
        else { Issue.record("\(journal.commands)"); return }
        #expect(try now.decode(Date.self) == drawn.now)
        #expect(abs(drawn.now.timeIntervalSince(record.startedAt)) < 0.001, "the start's time, not the restart's, 1 s later")
        #expect(try id.decode(UUID.self) == drawn.id)
        #expect(try number.decode(Double.self) == drawn.number)
        await harness.shutdown()
    }
}

/// A moment a test moves, for workflow code that compares the wall clock with it.
final class Threshold: Sendable {
    private let value: Mutex<Date>
    init(_ date: Date) { value = Mutex(date) }
    var date: Date {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
