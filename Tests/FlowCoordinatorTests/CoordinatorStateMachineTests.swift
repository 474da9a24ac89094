@testable import FlowCoordinator
import FlowCore
import Foundation
import Testing

/// The coordinator's decisions, without I/O or a clock: every event carries its time.
@Suite("the coordinator's state machine")
struct CoordinatorStateMachineTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    /// One attempt of 10 s, no retries, 5 s of grace: overdue 15 s after the send.
    func call(maximumResends: Int = 1, heartbeatTimeout: Duration? = nil) -> ActivityCall {
        ActivityCall(
            activity: "echo", queue: .default, input: try! JSONText(validating: "{}"),
            options: ActivityOptions(heartbeatTimeout: heartbeatTimeout, maximumResends: maximumResends),
            declaredTimeout: .seconds(10), declaredRetryPolicy: RetryPolicy(maximumAttempts: 1)
        )
    }

    func machine() -> CoordinatorStateMachine {
        CoordinatorStateMachine(replyGrace: .seconds(5), relaunchBackoff: Backoff(initial: .seconds(1), maximum: .seconds(8), jitter: 0))
    }

    func awaiting(_ machine: inout CoordinatorStateMachine, _ messageID: String = "w/a#1", workflowID: String = "w", call: ActivityCall? = nil, sentAt: Date? = nil) {
        _ = machine.launch(workflowID)
        machine.awaitStep(messageID, .init(workflowID: workflowID, call: call ?? self.call(), sentAt: sentAt, lastHeardAt: nil, sends: sentAt == nil ? 0 : 1))
    }

    @Test("a workflow launches once, and not at all while shutting down")
    func launches() {
        var machine = machine()
        let result1 = machine.launch("w")
        #expect(result1)
        let result2 = machine.launch("w")
        #expect(!result2)
        machine.shutDown()
        let result3 = machine.launch("v")
        #expect(!result3)
    }

    @Test("a step that ends is no longer watched, and a send confirmed after it changes nothing")
    func endedStepsAreForgotten() {
        var machine = machine()
        awaiting(&machine, sentAt: start)
        #expect(machine.awaitedCount == 1)
        machine.stepEnded("w/a#1")
        machine.stepSent("w/a#1", at: start)
        #expect(machine.awaitedCount == 0)
        #expect(machine.overdue(at: start.addingTimeInterval(3600), queueName: { $0.queueName }).isEmpty)
    }

    @Test("a sent step is overdue after its budget and is re-sent while it has re-sends left, then timed out")
    func overdueStepsAreResentThenTimedOut() throws {
        var machine = machine()
        awaiting(&machine, sentAt: start)
        #expect(machine.overdue(at: start.addingTimeInterval(15), queueName: { $0.queueName }).isEmpty, "exactly at the budget it is not yet overdue")
        let first = machine.overdue(at: start.addingTimeInterval(15.001), queueName: { $0.queueName })
        guard case .resend(let messageID, _, let reason)? = first.first else { Issue.record("expected a re-send, got \(first)"); return }
        #expect(messageID == "w/a#1")
        #expect(reason.contains("no final reply within"))
        machine.stepSent("w/a#1", at: start.addingTimeInterval(16))
        #expect(machine.overdue(at: start.addingTimeInterval(30), queueName: { $0.queueName }).isEmpty, "the budget counts again from the re-send")
        let second = machine.overdue(at: start.addingTimeInterval(31.5), queueName: { $0.queueName })
        guard case .timeOut(_, let workflowID, let failure)? = second.first else { Issue.record("expected a timeout, got \(second)"); return }
        #expect(workflowID == "w")
        #expect(failure.kind == .activityTimedOut)
        #expect(failure.message.contains("after 2 sends"))
        #expect(failure.message.contains("default-queue"))
    }

    @Test("a step that reported progress and then fell silent is overdue after its heartbeat timeout")
    func silentHeartbeats() {
        var machine = machine()
        awaiting(&machine, call: call(heartbeatTimeout: .seconds(2)), sentAt: start)
        machine.heard("w/a#1", at: start.addingTimeInterval(1))
        #expect(machine.overdue(at: start.addingTimeInterval(3), queueName: { $0.queueName }).isEmpty)
        let actions = machine.overdue(at: start.addingTimeInterval(3.01), queueName: { $0.queueName })
        guard case .resend(_, _, let reason)? = actions.first else { Issue.record("expected a re-send, got \(actions)"); return }
        #expect(reason.contains("no heartbeat within"))
    }

    @Test("steps not yet sent, or parked, are never overdue")
    func onlySentStepsAreSupervised() {
        var machine = machine()
        awaiting(&machine, "w/unsent#1")
        awaiting(&machine, "w/parked#1", sentAt: start)
        machine.parked("w/parked#1")
        #expect(machine.overdue(at: start.addingTimeInterval(3600), queueName: { $0.queueName }).isEmpty)
    }

    @Test("how a run's end is recorded: output, failures, cancellation, shutdown")
    func endings() {
        var machine = machine()
        _ = machine.launch("a")
        let result9 = machine.ended("a", .returned(.null), at: start, random: 0.5)
        #expect(result9 == .finished(.completed, output: .null, error: nil))
        _ = machine.launch("b")
        let failure = ActivityFailure.nonRetryable(.invalidInput, "bad")
        let result10 = machine.ended("b", .threw(ActivityError(activity: "x", failure: failure)), at: start, random: 0.5)
        #expect(result10 == .finished(.failed, output: nil, error: .nonRetryable(.invalidInput, "x failed: bad")))
        _ = machine.launch("c")
        let result11 = machine.requestCancel("c")
        #expect(result11)
        let result12 = machine.ended("c", .threw(CancellationError()), at: start, random: 0.5)
        #expect(result12 == .finished(.cancelled, output: nil, error: .nonRetryable(.cancelled, "the workflow was cancelled")))
        let result13 = machine.requestCancel("c")
        #expect(!result13, "a workflow that no longer runs here has no task to cancel")
        _ = machine.launch("e")
        let divergence = WorkflowNondeterminism(workflowID: "e", position: 1, recorded: "activity echo", requested: "a timer of 3 s")
        let diverged = machine.ended("e", .threw(divergence), at: start, random: 0.5)
        #expect(diverged == .diverged(divergence), "a run that does not replay parks; it is not failed")
        _ = machine.launch("d")
        machine.shutDown()
        let result14 = machine.ended("d", .threw(CancellationError()), at: start, random: 0.5)
        #expect(result14 == .suspended)
    }

    @Test("a workflow the coordinator could not record or send for is launched again after a growing wait")
    func relaunchBacksOff() {
        var machine = machine()
        var at = start
        for expected in [1.0, 2, 4, 8, 8] {
            _ = machine.launch("w")
            let result15 = machine.ended("w", .threw(CoordinatorUnavailable(message: "store down")), at: at, random: 0.5)
            #expect(result15 == .relaunch(at: at.addingTimeInterval(expected)))
            let result16 = machine.dueRelaunches(at: at.addingTimeInterval(expected - 0.001))
            #expect(result16.isEmpty)
            let result17 = machine.dueRelaunches(at: at.addingTimeInterval(expected))
            #expect(result17 == ["w"])
            let result18 = machine.dueRelaunches(at: at.addingTimeInterval(expected + 100))
            #expect(result18.isEmpty, "due once")
            at = at.addingTimeInterval(expected)
        }
        _ = machine.launch("w")
        _ = machine.ended("w", .returned(.null), at: at, random: 0.5)
        _ = machine.launch("w")
        let result19 = machine.ended("w", .threw(CoordinatorUnavailable(message: "again")), at: at, random: 0.5)
        #expect(result19 == .relaunch(at: at.addingTimeInterval(1)), "an end resets the count")
    }

    @Test("a run that ends forgets its steps")
    func endForgetsSteps() {
        var machine = machine()
        awaiting(&machine, "w/a#1", sentAt: start)
        awaiting(&machine, "w/b#1")
        awaiting(&machine, "v/a#1", workflowID: "v", sentAt: start)
        _ = machine.ended("w", .threw(CancellationError()), at: start, random: 0.5)
        #expect(machine.awaitedCount == 1, "the other workflow's step stays watched")
    }

    @Test("failures to handle messages back off, and one success resets them")
    func handlingBackoff() {
        var machine = machine()
        let waits = (0..<4).map { _ in machine.handlingFailed(random: 0.5) }
        #expect(waits == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600)])
        machine.handlingSucceeded()
        let result21 = machine.handlingFailed(random: 0.5)
        #expect(result21 == .milliseconds(200))
    }
}
