import FlowContracts
import FlowCoordinator
import FlowCore
import FlowTestKit
import Foundation
import Testing

/// Sums the numbers signalled to it, echoing each, two a run: it continues as new with the
/// sum so far until it has taken `count` numbers.
struct RunningSum: Workflow {
    static let name = "running_sum"

    struct State: Codable, Sendable {
        var sum = 0
        var taken = 0
        var count = 5
    }

    func run(context: WorkflowContext, input: State) async throws -> Int {
        var state = input
        for _ in 0..<2 {
            let number = try await context.receive(AddNumber.self)
            _ = try await context.execute(Echo.self, try JSONText(encoding: ["text": "\(number)"]))
            state.sum += number
            state.taken += 1
            if state.taken == state.count { return state.sum }
        }
        throw context.continueAsNew(with: state)
    }
}

@Suite("continue-as-new in the test kit")
struct ContinueAsNewTests {
    @Test("a workflow that continues as new runs on in its next run with the signals it had not taken; the runs before are kept, each with its own step keys")
    func runsOn() async throws {
        var environment = WorkflowTestEnvironment()
        environment.stub(Echo.self) { $0 }
        for number in [1, 2, 3] { try environment.signal(AddNumber.self, number) }
        // Two more, sent later on the run's clock: they reach the third run.
        for number in [4, 5] { try environment.signal(AddNumber.self, number, after: .seconds(60)) }
        let run = try await environment.run(RunningSum(), input: RunningSum.State())
        #expect(run.status == .completed)
        #expect(try run.output(as: Int.self) == 15)
        #expect(run.runNumber == 3 && run.previousRuns.map(\.runNumber) == [1, 2])
        #expect(run.previousRuns.allSatisfy { $0.status == .continuedAsNew })
        #expect(run.previousRuns.map { $0.history.events.last?.event.kind } == ["workflow_continued_as_new", "workflow_continued_as_new"])
        let stepKeys = (run.previousRuns + [run]).map { test in
            test.history.events.compactMap { entry -> String? in
                if case .activityScheduled(let scheduled) = entry.event { scheduled.stepKey } else { nil }
            }
        }
        #expect(stepKeys == [["echo@0", "echo@1"], ["run-2.echo@0", "run-2.echo@1"], ["run-3.echo@0"]])
        let second = try #require(run.previousRuns.last)
        #expect(try second.history.events.first?.event == .workflowStarted(name: RunningSum.name, input: JSONText(encoding: RunningSum.State(sum: 3, taken: 2))))
    }
}
