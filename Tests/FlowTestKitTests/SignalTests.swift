import FlowContracts
import FlowCoordinator
import FlowCore
import FlowTestKit
import Foundation
import Logging
import Testing

enum ApproveTraining: SignalDeclaration {
    static let name = "approve_training"
    struct Input: Codable, Sendable { var approver: String }
}

enum RejectTraining: SignalDeclaration {
    static let name = "reject_training"
    struct Input: Codable, Sendable { var reason: String }
}

enum AddNumber: SignalDeclaration {
    static let name = "add_number"
    typealias Input = Int
}

/// Waits an hour at most for a decision.
struct ApprovalWorkflow: Workflow {
    static let name = "approval"
    func run(context: WorkflowContext, input: JSONText) async throws -> String {
        guard let decision = try await context.receive(oneOf: [ApproveTraining.self, RejectTraining.self], timeout: .seconds(3600)) else { return "timed out" }
        if decision.is(ApproveTraining.self) { return "approved by \(try decision.input(as: ApproveTraining.self).approver)" }
        return "rejected: \(try decision.input(as: RejectTraining.self).reason)"
    }
}

/// Adds the numbers of three signals, an activity call between the first and the rest.
struct SummingWorkflow: Workflow {
    static let name = "summing"
    func run(context: WorkflowContext, input: JSONText) async throws -> [Int] {
        var seen = [try await context.receive(AddNumber.self)]
        _ = try await context.execute(Echo.self, try JSONText(validating: #"{"text":"between"}"#))
        seen.append(try await context.receive(AddNumber.self))
        seen.append(try await context.receive(AddNumber.self))
        return seen
    }
}

/// Signals in FlowTestKit: recorded in the journal in the order they arrive, received
/// once each, with durable timeouts on the skipped clock.
@Suite("signals, on FlowTestKit")
struct SignalTests {
    @Test("a decision within the hour is received; none, or one after it, times the wait out an hour after the start", arguments: [
        (Duration.seconds(1800), "approve", "approved by ada", 1800.0),
        (.seconds(60), "reject", "rejected: too small", 60),
        (.seconds(7200), "approve", "timed out", 3600),
    ])
    func approval(after: Duration, decision: String, expected: String, seconds: Double) async throws {
        var environment = WorkflowTestEnvironment()
        if decision == "approve" { try environment.signal(ApproveTraining.self, .init(approver: "ada"), after: after) }
        else { try environment.signal(RejectTraining.self, .init(reason: "too small"), after: after) }
        let run = try await environment.run(ApprovalWorkflow(), input: .emptyObject)
        #expect(run.status == .completed)
        #expect(try run.output(as: String.self) == expected)
        #expect(run.endTime == environment.startTime.addingTimeInterval(seconds))
        let kinds = run.history.events.map(\.event.kind)
        #expect(kinds.prefix(2) == ["workflow_started", "timer_started"], "the wait is a durable timer")
        let replay = await WorkflowReplayer(registry: Self.registry(), logger: Logger(label: "test")).replay(run.history)
        #expect(replay.replays, "\(replay)")
    }

    @Test("signals sent before the workflow asks wait for it, and are received in the order sent, each once")
    func order() async throws {
        var environment = WorkflowTestEnvironment()
        environment.stub(Echo.self) { $0 }
        for number in [5, 7, 9] { try environment.signal(AddNumber.self, number) }
        let run = try await environment.run(SummingWorkflow(), input: .emptyObject)
        #expect(run.status == .completed)
        #expect(try run.output(as: [Int].self) == [5, 7, 9])
        let signals = run.history.events.compactMap { if case .signalReceived(_, let name, let input) = $0.event { "\(name)=\(input.text)" } else { nil } }
        #expect(signals == ["add_number=5", "add_number=7", "add_number=9"])
        let replay = await WorkflowReplayer(registry: Self.registry(), logger: Logger(label: "test")).replay(run.history)
        #expect(replay.replays, "\(replay)")
    }

    @Test("a workflow that waits for a signal nobody sends stops, saying so")
    func noSignal() async throws {
        var environment = WorkflowTestEnvironment()
        environment.stub(Echo.self) { $0 }
        try environment.signal(AddNumber.self, 1)
        let run = try await environment.run(SummingWorkflow(), input: .emptyObject)
        #expect(run.status == .parked)
        #expect(run.parkedReason?.contains("no signal is left to send") == true, "\(run.parkedReason ?? "")")
    }

    static func registry() -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(ApprovalWorkflow())
        registry.register(SummingWorkflow())
        return registry
    }
}

enum Total: QueryDeclaration {
    static let name = "total"
    typealias Output = Int
}

/// Adds up `add_number` signals in a handler, until the total reaches 10 or ten minutes pass.
struct TallyWorkflow: Workflow {
    static let name = "tally"
    func run(context: WorkflowContext, input: JSONText) async throws -> Int {
        let total = WorkflowState(0)
        context.onSignal(AddNumber.self) { number in total.update { $0 += number } }
        context.onQuery(Total.self) { total.value }
        let reached = try await context.condition(timeout: .seconds(600)) { total.value >= 10 }
        return reached ? total.value : -total.value
    }
}

extension SignalTests {
    @Test("signal handlers change state, and condition returns once it holds, or false when its timeout passes first", arguments: [
        ([3, 4, 5], 12, 180.0),
        ([1, 2], -3, 600),
    ])
    func condition(numbers: [Int], expected: Int, seconds: Double) async throws {
        var environment = WorkflowTestEnvironment()
        for (index, number) in numbers.enumerated() { try environment.signal(AddNumber.self, number, after: .seconds(60 * (index + 1))) }
        let run = try await environment.run(TallyWorkflow(), input: .emptyObject)
        #expect(run.status == .completed)
        #expect(try run.output(as: Int.self) == expected)
        #expect(run.endTime == environment.startTime.addingTimeInterval(seconds))
        #expect(try await run.query(Total.self) == abs(expected), "the state, rebuilt by replaying the journal")
        var registry = WorkflowRegistry()
        registry.register(TallyWorkflow())
        let replay = await WorkflowReplayer(registry: registry, logger: Logger(label: "test")).replay(run.history)
        #expect(replay.replays, "\(replay)")
    }
}
