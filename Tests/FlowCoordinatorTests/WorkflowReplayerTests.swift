import FlowContracts
import FlowCoordinator
import FlowCore
import FlowRuntime
import FlowTesting
import Foundation
import Logging
import Testing

/// `shout`: its input in capitals.
struct Shout: Activity {
    static let name = "shout"
    static let queue = WorkQueue.default
    typealias Input = CountedEcho.Payload
    typealias Output = CountedEcho.Payload

    func run(_ input: CountedEcho.Payload, context: ActivityContext) async throws -> CountedEcho.Payload {
        .init(value: input.value.uppercased())
    }
}

/// The replayer runs today's code against recorded histories: one test for each way of
/// breaking determinism, and the changes that are safe.
@Suite("the workflow replayer")
struct WorkflowReplayerTests {
    /// A step, two parallel steps of different activities, a sleep, a last step; each
    /// variant changes it in one way.
    struct Recorded: Workflow {
        static let name = "recorded"
        enum Variant: Sendable { case original, differentActivity, removedStep, reorderedAsyncLet, clockRead(Threshold), changedInput }
        let variant: Variant

        func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> String {
            let first: CountedEcho.Payload = switch variant {
            case .differentActivity: try await context.execute(Shout.self, input)
            case .changedInput: try await context.execute(CountedEcho.self, .init(value: input.value + " and more"))
            default: try await context.execute(CountedEcho.self, input)
            }
            let left: CountedEcho.Payload
            let right: CountedEcho.Payload
            if case .reorderedAsyncLet = variant {
                async let shouted = context.execute(Shout.self, .init(value: first.value + "-right"))
                async let echoed = context.execute(CountedEcho.self, .init(value: first.value + "-left"))
                (left, right) = (try await echoed, try await shouted)
            } else {
                async let echoed = context.execute(CountedEcho.self, .init(value: first.value + "-left"))
                async let shouted = context.execute(Shout.self, .init(value: first.value + "-right"))
                (left, right) = (try await echoed, try await shouted)
            }
            if case .clockRead(let threshold) = variant, Date() > threshold.date {
                _ = try await context.execute(Shout.self, .init(value: "it is late"))
            }
            if case .removedStep = variant {} else { try await context.sleep(for: .seconds(1)) }
            return try await context.execute(CountedEcho.self, .init(value: left.value + "+" + right.value)).value
        }
    }

    static func registry(_ variant: Recorded.Variant) -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(Recorded(variant: variant))
        return registry
    }

    /// Runs `variant` on a coordinator to its end and returns its history, as
    /// `flow workflow show ID --json` would write it.
    static func record(_ variant: Recorded.Variant = .original) async throws -> WorkflowHistory {
        let clock = ManualWallClock()
        var activities = ActivityRegistry()
        activities.register(CountedEcho(counter: RunCounter()))
        activities.register(Shout())
        let harness = try await CoordinatorHarness(workflows: registry(variant), activities: activities, transports: .inMemory(InMemoryBroker()), clock: clock)
        try await harness.coordinator.start(workflow: Recorded.name, id: "run-1", input: try JSONText(encoding: CountedEcho.Payload(value: "a")), recipient: nil)
        try await waitUntil { try await harness.store.history(workflowID: "run-1").contains { $0.kind == .timerStarted } }
        try await clock.advanceWhenAsleep(by: .seconds(1), sleepers: 2)
        let record = try await harness.waitFor("run-1", [.completed, .failed, .parked], timeout: .seconds(120))
        #expect(try record.output?.decode(String.self) == "a-left+A-RIGHT")
        let history = WorkflowHistory(workflowID: "run-1", workflow: Recorded.name, events: try await harness.store.journal(workflowID: "run-1"))
        await harness.shutdown()
        return history
    }

    static func replay(_ history: WorkflowHistory, with variant: Recorded.Variant) async -> ReplayResult {
        await WorkflowReplayer(registry: registry(variant), logger: Logger(label: "test.replayer")).replay(history)
    }

    /// The divergence a replay found, or a test issue.
    static func divergence(_ result: ReplayResult) -> WorkflowNondeterminism? {
        guard case .diverges(let divergence) = result.verdict else {
            Issue.record("expected a divergence, got \(result)")
            return nil
        }
        return divergence
    }

    @Test("the code that recorded a run replays it, whole or cut short as an open run, and a changed input replays too")
    func sameCodeReplays() async throws {
        let history = try await Self.record()
        let whole = await Self.replay(history, with: .original)
        #expect(whole.replays, "\(whole)")
        #expect(whole.commands == 5)
        var open = history
        open.events = Array(history.events.prefix { $0.event.kind != "timer_fired" })
        #expect(await Self.replay(open, with: .original).replays)
        let changedInput = await Self.replay(history, with: .changedInput)
        #expect(changedInput.replays, "inputs are not compared: \(changedInput)")
        // The history reads back as it is written.
        #expect(try FlowJSON.decode(WorkflowHistory.self, from: FlowJSON.encodeText(history, pretty: true)) == history)
    }

    @Test("a different activity at a recorded position diverges there")
    func differentActivity() async throws {
        let divergence = Self.divergence(await Self.replay(try await Self.record(), with: .differentActivity))
        #expect(divergence?.position == 0)
        #expect(divergence?.recorded == "activity counted_echo" && divergence?.requested == "activity shout")
    }

    @Test("a removed step diverges where the journal has it")
    func removedStep() async throws {
        let divergence = Self.divergence(await Self.replay(try await Self.record(), with: .removedStep))
        #expect(divergence?.position == 3)
        #expect(divergence?.recorded == "a timer (sleep@3)" && divergence?.requested == "activity counted_echo")
    }

    @Test("async lets declared in another order issue their commands in another order, which diverges")
    func reorderedAsyncLet() async throws {
        let divergence = Self.divergence(await Self.replay(try await Self.record(), with: .reorderedAsyncLet))
        #expect(divergence?.position == 1)
        #expect(divergence?.recorded == "activity counted_echo" && divergence?.requested == "activity shout")
    }

    @Test("code that reads the clock directly takes another branch on a later replay, which diverges")
    func clockRead() async throws {
        let threshold = Threshold(.distantFuture)
        let history = try await Self.record(.clockRead(threshold))
        #expect(await Self.replay(history, with: .clockRead(threshold)).replays, "the same reading replays")
        threshold.date = .distantPast
        let divergence = Self.divergence(await Self.replay(history, with: .clockRead(threshold)))
        #expect(divergence?.position == 3)
        #expect(divergence?.requested == "activity shout")
    }

    @Test("a history whose journal does not hold together, or of a workflow not registered, cannot be replayed, with the reason")
    func unreadable() async throws {
        var history = try await Self.record()
        history.events.remove(at: 2)
        guard case .unreadable(let reason) = await Self.replay(history, with: .original).verdict else { Issue.record("a gap replayed"); return }
        #expect(reason.contains("journal event 4") && reason.contains("where 3 comes next"), "\(reason)")
        history.workflow = "renamed"
        guard case .unreadable(let other) = await Self.replay(history, with: .original).verdict else { Issue.record("an unknown workflow replayed"); return }
        #expect(other.contains("no workflow named 'renamed'"))
    }
}
