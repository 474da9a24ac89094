import FlowAMQP
import FlowCoordinator
import FlowContracts
import FlowCore
import FlowDeadLetters
import FlowTesting
import Foundation
import Synchronization
import Testing

@Suite("the workflow coordinator on a real broker", .serialized)
struct CoordinatorTests {
    let counter = RunCounter()
    let fixed = Switch()

    func harness() async throws -> CoordinatorHarness {
        try await CoordinatorHarness(workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: fixed))
    }

    @Test("a workflow's steps, parallel ones too, run once each and its history tells them in order")
    func parallelSteps() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: CountedWorkflow.name, id: "w1", input: try JSONText(encoding: CountedEcho.Payload(value: "a")), recipient: nil)
        let record = try await harness.waitFor("w1", [.completed, .failed])
        let output = try #require(record.output).decode(CountedWorkflow.Output.self)
        #expect(output == .init(first: "a", left: "a-left", right: "a-right"))
        #expect(counter.all.count == 3)
        #expect(counter.all.values.allSatisfy { $0 == 1 })
        let kinds = try await harness.store.history(workflowID: "w1").map(\.kind)
        #expect(kinds.first == .workflowStarted)
        #expect(kinds.last == .workflowCompleted)
        #expect(kinds.filter { $0 == .activityScheduled }.count == 3)
        #expect(kinds.filter { $0 == .activityCompleted }.count == 3)
        await harness.shutdown()
    }

    @Test("a workflow started twice with the same id runs once, and both starters get its result")
    func startTwice() async throws {
        let harness = try await harness()
        let replyQueue = TestBroker.uniqueName("starter")
        try await harness.requester.declare(Topology(queues: [.init(name: replyQueue, durable: false, exclusive: true, autoDelete: true)]))
        let replies = try await harness.requester.consume(queue: replyQueue, prefetch: 10)
        let start = WorkflowCommand.Start(workflow: CountedWorkflow.name, workflowID: "twice", input: try JSONText(encoding: CountedEcho.Payload(value: "x")))
        try await harness.sendCommand(.start, start, replyTo: replyQueue, correlationID: "first")
        try await harness.sendCommand(.start, start, replyTo: replyQueue, correlationID: "second")
        var results: [String: WorkflowResult] = [:]
        for try await delivery in replies {
            try await delivery.ack()
            results[delivery.properties.correlationID ?? ""] = try FlowJSON.decode(WorkflowResult.self, from: delivery.body)
            if results.count == 2 { break }
        }
        replies.cancel()
        #expect(results["first"]?.status == .completed)
        #expect(results["first"] == results["second"])
        #expect(counter.all.count == 3, "one run of three steps, not two")
        #expect(harness.coordinator.statistics.count(.duplicateStart) == 1)
        await harness.shutdown()
    }

    @Test("a step whose attempt times out is retried per the workflow's policy")
    func stepTimeout() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: TimeoutWorkflow.name, id: "slow", input: .init(validating: "{}"), recipient: nil)
        let record = try await harness.waitFor("slow", [.completed, .failed, .parked])
        #expect(record.status == .completed)
        #expect(try record.output?.decode(HangsOnFirstAttempt.Output.self).attempt == 2)
        await harness.shutdown()
    }

    @Test("a step no worker answers is sent again under the same id, then fails the workflow with ActivityTimedOut")
    func lostWorker() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: LostWorkerWorkflow.name, id: "lost", input: .init(validating: "{}"), recipient: nil)
        let record = try await harness.waitFor("lost", [.completed, .failed, .parked])
        #expect(record.status == .failed)
        #expect(record.error?.type == "ActivityTimedOut")
        #expect(record.error?.message.contains(harness.names.queue(.ml)) == true, "the error should name the queue nobody consumes: \(String(describing: record.error))")
        // Both sends carry one message id, so a worker that turns up runs it once.
        #expect(try await harness.requester.inspectQueue(harness.names.queue(.ml)).messageCount == 2)
        let kinds = try await harness.store.history(workflowID: "lost").map(\.kind)
        #expect(kinds.contains(.activityResent))
        #expect(kinds.contains(.activityTimedOut))
        await harness.shutdown()
    }

    @Test("a step dead-lettered parks its workflow; replaying the message after the fix lets it finish")
    func parkAndReplay() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: ParkingWorkflow.name, id: "parked", input: .init(validating: "{}"), recipient: nil)
        let parked = try await harness.waitFor("parked", [.parked, .completed, .failed])
        #expect(parked.status == .parked)
        #expect(parked.parkedReason?.contains("NotReady") == true)

        fixed.turnOn()
        let deadLetters = DeadLetterQueue(transport: harness.requester, names: harness.names, audit: nil)
        let report = try await deadLetters.replay(DeadLetterFilter(workflowID: "parked"), operatorName: "test")
        #expect(report.replayed.count == 1)
        let finished = try await harness.waitFor("parked", [.completed, .failed, .cancelled])
        #expect(finished.status == .completed)
        #expect(try finished.output?.decode(NeedsAFix.Output.self) == .init(fixed: true))
        let kinds = try await harness.store.history(workflowID: "parked").map(\.kind)
        #expect(kinds.contains(.workflowUnparked))
        await harness.shutdown()
    }

    @Test("a workflow that asks for failures catches the activity's error instead of parking")
    func catchingFailure() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: CatchingWorkflow.name, id: "catching", input: .init(validating: "{}"), recipient: nil)
        let record = try await harness.waitFor("catching", [.completed, .failed, .parked])
        #expect(record.status == .completed)
        #expect(try record.output?.decode(String.self) == "caught NotReady")
        await harness.shutdown()
    }

    @Test("cancelling a parked workflow ends it as cancelled, and the starter is told")
    func cancelParked() async throws {
        let harness = try await harness()
        let replyQueue = TestBroker.uniqueName("starter")
        try await harness.requester.declare(Topology(queues: [.init(name: replyQueue, durable: false, exclusive: true, autoDelete: true)]))
        let replies = try await harness.requester.consume(queue: replyQueue, prefetch: 10)
        try await harness.sendCommand(.start, WorkflowCommand.Start(workflow: ParkingWorkflow.name, workflowID: "to-cancel"), replyTo: replyQueue)
        _ = try await harness.waitFor("to-cancel", [.parked])
        try await harness.sendCommand(.cancel, WorkflowCommand.Cancel(workflowID: "to-cancel", reason: "test"))
        var statuses: [WorkflowStatus] = []
        for try await delivery in replies {
            try await delivery.ack()
            let result = try FlowJSON.decode(WorkflowResult.self, from: delivery.body)
            statuses.append(result.status)
            if result.status.isFinished { break }
        }
        replies.cancel()
        #expect(statuses == [.parked, .cancelled], "a parked notice, then the end")
        #expect(try await harness.store.workflow(id: "to-cancel")?.status == .cancelled)
        await harness.shutdown()
    }

    @Test("a durable sleep survives a restart of the coordinator and is not started again")
    func durableSleep() async throws {
        let clock = DeadlineRecordingClock()
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: fixed), clock: clock
        )
        try await harness.coordinator.start(workflow: SleepyWorkflow.name, id: "sleepy", input: try JSONText(encoding: CountedEcho.Payload(value: "z")), recipient: nil)
        let deadline = ContinuousClock.now + .seconds(60)
        while try await harness.store.history(workflowID: "sleepy").contains(where: { $0.kind == .timerStarted }) == false, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        await harness.stopCoordinator()
        try await Task.sleep(for: .seconds(1))
        let restartedAt = Date()
        harness.startCoordinator()
        let record = try await harness.waitFor("sleepy", [.completed, .failed])
        #expect(record.status == .completed)
        let history = try await harness.store.history(workflowID: "sleepy")
        let started = try #require(history.first { $0.kind == .timerStarted })
        let fired = try #require(history.first { $0.kind == .timerFired })
        #expect(history.filter { $0.kind == .timerStarted }.count == 1)
        #expect(history.contains { $0.kind == .workflowResumed })
        // The wait counts from the first start, not from the restart.
        #expect(fired.at.timeIntervalSince(started.at) >= 2.9)
        // What the restarted coordinator waited for, read from its clock rather than from when
        // it fired, which a loaded machine delays: the first start's instant. Begun again, the
        // wait would end 3 s after the restart, at least a second later.
        let firstFireAt = started.at.addingTimeInterval(3)
        let waitsAfterRestart = clock.deadlines.filter { $0.requestedAt >= restartedAt }.map(\.until)
        #expect(
            waitsAfterRestart.contains { abs($0.timeIntervalSince(firstFireAt)) < 0.01 },
            "the restarted coordinator must wait for the timer's first instant \(firstFireAt), not begin the 3 s again"
        )
        await harness.shutdown()
    }

    @Test("replies with an unknown correlation id are counted and dropped; a malformed one is dead-lettered with its reason")
    func strayReplies() async throws {
        let harness = try await harness()
        let stray = ActivityReply(status: .completed, activity: "echo", messageID: "nobody/step#1", attempt: 1, output: try JSONText(validating: "{}"))
        try await harness.requester.publish(AMQPMessage(
            routingKey: harness.names.coordinatorReplyQueue,
            properties: AMQPProperties(contentType: FlowProtocol.contentType, correlationID: "nobody/step#1"),
            body: Array(try FlowJSON.encode(stray))
        ))
        try await harness.requester.publish(AMQPMessage(
            routingKey: harness.names.coordinatorReplyQueue, properties: AMQPProperties(contentType: FlowProtocol.contentType), body: Array("not json".utf8)
        ))
        let deadline = ContinuousClock.now + .seconds(60)
        while harness.coordinator.statistics.count(.staleReply) < 1 || harness.coordinator.statistics.count(.rejectedMessage) < 1, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(harness.coordinator.statistics.count(.staleReply) == 1)
        let letters = try await DeadLetterQueue(transport: harness.requester, names: harness.names, audit: nil).list(DeadLetterFilter())
        #expect(letters.count == 1)
        #expect(letters.first?.errorType == "MalformedReply")
        #expect(letters.first?.error?.contains("not an activity reply") == true)
        // Both were acknowledged: once the coordinator's channel closes, nothing comes back.
        await harness.stopCoordinator()
        try await Task.sleep(for: .seconds(1))
        #expect(try await harness.requester.inspectQueue(harness.names.coordinatorReplyQueue).messageCount == 0)
        await harness.shutdown()
    }

    @Test("a start command for an unknown workflow is answered as failed and dead-lettered with the names that exist")
    func unknownWorkflow() async throws {
        let harness = try await harness()
        let replyQueue = TestBroker.uniqueName("starter")
        try await harness.requester.declare(Topology(queues: [.init(name: replyQueue, durable: false, exclusive: true, autoDelete: true)]))
        let replies = try await harness.requester.consume(queue: replyQueue, prefetch: 10)
        try await harness.sendCommand(.start, WorkflowCommand.Start(workflow: "no_such_flow", workflowID: "nope"), replyTo: replyQueue)
        var result: WorkflowResult?
        for try await delivery in replies {
            try await delivery.ack()
            result = try FlowJSON.decode(WorkflowResult.self, from: delivery.body)
            break
        }
        replies.cancel()
        #expect(result?.status == .failed)
        #expect(result?.error?.type == "UnknownWorkflow")
        #expect(result?.error?.message.contains(CountedWorkflow.name) == true)
        let letters = try await DeadLetterQueue(transport: harness.requester, names: harness.names, audit: nil).list(DeadLetterFilter())
        #expect(letters.map(\.errorType) == ["UnknownWorkflow"])
        await harness.shutdown()
    }
}

@Suite("workflows started by other AMQP clients")
struct WorkflowInteroperabilityTests {
    @Test("a workflow started by the pika script of docs/protocol.md runs, and its result arrives")
    func pikaStart() async throws {
        let harness = try await CoordinatorHarness(workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: RunCounter(), fixed: Switch()))
        let script = Repository.file("docs/examples/start_workflow.py").path
        let arguments = [
            "python3", script, TestBroker.url, CountedWorkflow.name, #"{"value": "from pika"}"#,
            "--workflow-id", "pika-1", "--queue", harness.names.name(Topology.workflowCommandQueue), "--timeout", "60",
        ]
        // Off the cooperative pool: the script blocks its thread until the result arrives.
        let output = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessOutput, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run("/usr/bin/env", arguments) })
            }
        }
        #expect(output.status == 0, "the script failed: \(output.standardError)")
        let result = try FlowJSON.decoder.decode(WorkflowResult.self, from: Data(output.standardOutput.utf8))
        #expect(result.workflowID == "pika-1")
        #expect(result.status == .completed)
        #expect(try result.output?.decode(CountedWorkflow.Output.self) == .init(first: "from pika", left: "from pika-left", right: "from pika-right"))
        await harness.shutdown()
    }

    @Test("signals sent by the pika script of docs/protocol.md start a workflow and reach its code, and one sent twice counts once")
    func pikaSignals() async throws {
        let harness = try await CoordinatorHarness(workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: RunCounter(), fixed: Switch()))
        let queue = harness.names.name(Topology.workflowCommandQueue)
        func signal(_ word: String, id: String, start: Bool) async throws -> ProcessOutput {
            var command = ["python3", Repository.file("docs/examples/signal_workflow.py").path, TestBroker.url, "pika-signalled", Nudge.name, "\"\(word)\"", "--signal-id", id, "--queue", queue]
            if start { command += ["--start", NudgedWorkflow.name, "--start-input", #"{"value": "-"}"#] }
            // Off the cooperative pool: the script blocks its thread until the answer arrives.
            let arguments = command
            return try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(with: Result { try ProcessRunner.run("/usr/bin/env", arguments) }) }
            }
        }
        let first = try await signal("one", id: "p1", start: true)
        #expect(first.status == 0, "\(first.standardOutput) \(first.standardError)")
        let repeated = try await signal("one", id: "p1", start: true)
        #expect(repeated.status == 0 && repeated.standardOutput.contains("recorded once"), "\(repeated.standardOutput)")
        let second = try await signal("two", id: "p2", start: false)
        #expect(second.status == 0, "\(second.standardOutput) \(second.standardError)")
        let record = try await harness.waitFor("pika-signalled", [.completed, .failed], timeout: .seconds(60))
        #expect(try record.output?.decode([String].self) == ["one", "two"])
        let ended = try await signal("three", id: "p3", start: false)
        #expect(ended.status == 1 && ended.standardOutput.contains("has ended"), "\(ended.standardOutput)")
        await harness.shutdown()
    }
}

/// The system's wall clock, keeping every instant it was asked to sleep until, so a test can
/// say what the coordinator waited for without timing it on a machine that may be loaded.
final class DeadlineRecordingClock: WallClock, Sendable {
    struct Wait: Sendable {
        let requestedAt: Date
        let until: Date
    }

    private let system = SystemWallClock()
    private let waits = Mutex<[Wait]>([])

    var deadlines: [Wait] { waits.withLock { $0 } }
    var now: WallInstant { system.now }
    var minimumResolution: Duration { system.minimumResolution }

    func sleep(until deadline: WallInstant, tolerance: Duration?) async throws {
        waits.withLock { $0.append(Wait(requestedAt: Date(), until: deadline.date)) }
        try await system.sleep(until: deadline, tolerance: tolerance)
    }
}
