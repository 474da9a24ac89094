import FlowContracts
import FlowCoordinator
import FlowCore
import FlowTestKit
import FlowWorkflows
import Foundation
import Logging
import Synchronization
import Testing

/// `echo`'s stub: the hop's text with a mark per step, so the test sees every call.
@Sendable func markingEcho(_ input: JSONText) throws -> JSONText {
    guard case .object(var hop) = input.value, case .string(let text)? = hop["text"] else { throw ActivityFailure.nonRetryable(.invalidInput, "not a hop: \(input)") }
    hop["text"] = .string(text + ".")
    return JSONText(.object(hop))
}

/// Workflows run in-process with FlowTestKit: stubs instead of workers, time skipped.
@Suite("FlowTestKit's workflow test environment")
struct WorkflowTestEnvironmentTests {
    @Test("echo_chain with an hour's pause between steps completes at once, the clock two hours on, each step a stub call")
    func skipsTime() async throws {
        var environment = WorkflowTestEnvironment()
        environment.stub(Echo.self, markingEcho)
        let run = try await environment.run(EchoChain(), input: .init(text: "hi", steps: 3, pauseSeconds: 3600))
        #expect(run.status == .completed)
        let output = try run.output(as: EchoChain.Output.self)
        #expect(output.text == "hi..." && output.steps == 3)
        #expect(run.endTime == environment.startTime.addingTimeInterval(7200))
        #expect(try run.calls(of: Echo.self).count == 3)
        let journal = try run.journal
        #expect(journal.status == .completed)
        #expect(journal.commands.count == 5, "three steps and two sleeps")
        // The journal is one the coordinator replays: the same code replays it.
        var registry = WorkflowRegistry()
        registry.register(EchoChain())
        let replay = await WorkflowReplayer(registry: registry, logger: Logger(label: "test")).replay(run.history)
        #expect(replay.replays, "\(replay)")
    }

    /// Calls `echo` with the policy given, and says what came of it.
    struct Tries: Workflow {
        static let name = "tries"
        func run(context: WorkflowContext, input: ActivityOptions) async throws -> String {
            do {
                return try await context.execute(Echo.self, try JSONText(validating: #"{"text":"x"}"#), options: input).text
            } catch let error as ActivityError {
                return "caught \(error.failure.type)"
            }
        }
    }

    @Test("a retryable failure is retried up to the policy's attempts; then the failure parks the workflow, or is thrown into it")
    func retriesParksAndThrows() async throws {
        let calls = Mutex(0)
        var environment = WorkflowTestEnvironment()
        environment.stub(Echo.self) { input in
            let call = calls.withLock { $0 += 1; return $0 }
            if call < 3 { throw ActivityFailure(type: "Flaky", message: "try again", retryable: true) }
            return input
        }
        let succeeds = try await environment.run(Tries(), input: ActivityOptions(retryPolicy: RetryPolicy(maximumAttempts: 5)))
        #expect(succeeds.status == .completed && calls.withLock { $0 } == 3)
        #expect(try succeeds.journal.entries.contains { $0.event == .activityCompleted(position: 0, attempt: 3, output: try JSONText(validating: #"{"text":"x"}"#)) })

        calls.withLock { $0 = 0 }
        let parks = try await environment.run(Tries(), input: ActivityOptions(retryPolicy: RetryPolicy(maximumAttempts: 2)))
        #expect(parks.status == .parked)
        #expect(parks.parkedReason?.contains("echo (position 0) failed: Flaky: try again") == true, "\(parks.parkedReason ?? "")")
        #expect(try parks.journal.status == .parked)

        calls.withLock { $0 = 0 }
        let throwsIn = try await environment.run(Tries(), input: ActivityOptions(retryPolicy: RetryPolicy(maximumAttempts: 2), onFinalFailure: .throw))
        #expect(try throwsIn.output(as: String.self) == "caught Flaky")
    }

    @Test("a call with no stub parks the run with a reason that says which stub to add; a throwing workflow fails")
    func missingStubAndFailure() async throws {
        let run = try await WorkflowTestEnvironment().run(EchoChain(), input: .init(text: "hi"))
        #expect(run.status == .parked)
        #expect(run.parkedReason?.contains("no stub for activity echo: add environment.stub(echo.self)") == true, "\(run.parkedReason ?? "")")
        let invalid = try await WorkflowTestEnvironment().run(EchoChain(), input: .init(text: "hi", steps: 0))
        #expect(invalid.status == .failed)
        #expect(invalid.error?.message.contains("steps must be from 1 to 1000") == true)
    }
}
