import FlowCoordinator
import FlowCore
import Foundation
import Logging
import Synchronization

/// The engine of one test run: the coordinator's loop with the store and the broker
/// replaced by an in-memory journal and the stubs.
final class TestEngine: Sendable {
    private enum Input: Sendable {
        case outcome(position: Int, Result<JSONText, ActivityFailure>, attempts: Int)
        case child(position: Int, Result<WorkflowTestRun, ActivityFailure>)
    }

    private struct State {
        var events: [JournalEntry] = []
        var now: Date
        /// The signals this run did not take, for the next run after a continue-as-new.
        var leftover: [TestSignal] = []
    }

    let workflowID: String
    let workflowName: String
    let runNumber: Int
    /// The first run's start: signal times count from it.
    let origin: Date
    let stubs: [String: WorkflowTestEnvironment.Stub]
    let signals: [TestSignal]
    let children: WorkflowRegistry
    let logger: Logger
    private let state: Mutex<State>

    init(
        workflowID: String, workflowName: String, runNumber: Int = 1, stubs: [String: WorkflowTestEnvironment.Stub], signals: [TestSignal], children: WorkflowRegistry,
        start: Date, origin: Date? = nil, logger: Logger
    ) {
        self.workflowID = workflowID
        self.workflowName = workflowName
        self.runNumber = runNumber
        self.origin = origin ?? start
        self.stubs = stubs
        self.signals = signals
        self.children = children
        self.logger = logger
        self.state = Mutex(State(now: start))
    }

    private var now: Date { state.withLock { $0.now } }
    /// The signals the run did not take: those its code had not received, then those not sent yet.
    var leftoverSignals: [TestSignal] { state.withLock { $0.leftover } }

    private func append(_ event: WorkflowEvent) {
        state.withLock { state in
            state.events.append(JournalEntry(sequence: Int64(state.events.count + 1), epoch: 0, recordedAt: state.now, event: event))
        }
    }

    func run(registry: WorkflowRegistry, input: JSONText) async throws -> WorkflowTestRun {
        let entry = registry.entry(named: workflowName)!
        let (inputs, inbox) = AsyncStream<Input>.makeStream()
        let run = WorkflowRun(workflowID: workflowID, workflowName: workflowName, runNumber: runNumber, recorded: []) {}
        let context = WorkflowContext(run: run, startedAt: now, clock: TestClock(engine: self), logger: logger)
        append(.workflowStarted(name: workflowName, input: input))
        var calls: [Int: ActivityCall] = [:]
        var timers: [(position: Int, fireAt: Date)] = []
        let start = origin
        // In the order sent, each at its time; a stable sort keeps that order for equal times.
        var signals = self.signals.enumerated().sorted { ($0.element.after, $0.offset) < ($1.element.after, $1.offset) }.map(\.element)
        var parked: String?
        /// Why the first step that parked did: the run's reason once nothing else moves.
        var firstPark: String?
        var childRuns: [String: WorkflowTestRun] = [:]
        var childCommands: [Int: WorkflowJournal.Command] = [:]

        await withTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: run.executor) {
                do { run.finish(.returned(try await entry.run(input, context))) } catch { run.finish(.threw(error)) }
            }
            run.settle()
            var pending = inputs.makeAsyncIterator()
            var waiting = 0
            while run.ending == nil {
                for command in run.takeNewCommands() {
                    switch command.request {
                    case .activity(let call):
                        append(.activityScheduled(.init(
                            position: command.position, activity: call.activity, queue: call.queue.queueName, input: call.input, options: call.options,
                            stepKey: run.stepKey(activity: call.activity, position: command.position)
                        )))
                        calls[command.position] = call
                        waiting += 1
                        let stub = stubs[call.activity]
                        group.addTask { inbox.yield(await Self.call(stub, call, position: command.position)) }
                    case .timer(let duration):
                        let fireAt = now.addingTimeInterval(duration.seconds)
                        append(.timerStarted(position: command.position, key: "sleep@\(command.position)", fireAt: fireAt))
                        timers.append((command.position, fireAt))
                    case .marker(let name):
                        append(.markerRecorded(position: command.position, name: name, value: command.value ?? .null))
                    case .child(let call):
                        let scheduled = WorkflowEvent.ScheduledChild(
                            position: command.position, workflow: call.workflow, workflowID: call.workflowID, input: call.input, parentClosePolicy: call.parentClosePolicy
                        )
                        append(.childScheduled(scheduled))
                        childCommands[command.position] = .child(scheduled, .waiting)
                        waiting += 1
                        let child = TestEngine(workflowID: call.workflowID, workflowName: call.workflow, stubs: stubs, signals: [], children: children, start: now, logger: logger)
                        let children = self.children
                        group.addTask {
                            guard children.entry(named: call.workflow) != nil else {
                                let failure = ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow \(call.workflow) is registered for children: add environment.register(\(call.workflow)())")
                                inbox.yield(.child(position: command.position, .failure(failure)))
                                return
                            }
                            do {
                                inbox.yield(.child(position: command.position, .success(try await child.run(registry: children, input: call.input))))
                            } catch {
                                inbox.yield(.child(position: command.position, .failure(.nonRetryable(.workflowError, "child workflow \(call.workflowID) did not run: \(error)"))))
                            }
                        }
                    }
                }
                if run.ending != nil { break }
                if waiting == 0 {
                    // Nothing is in flight: time skips to the next signal or timer, or nothing
                    // will come. A signal due no later than the next timer arrives first.
                    let next = timers.indices.min(by: { timers[$0].fireAt < timers[$1].fireAt })
                    if let signal = signals.first, next.map({ start.addingTimeInterval(signal.after.seconds) <= timers[$0].fireAt }) ?? true {
                        signals.removeFirst()
                        state.withLock { $0.now = max($0.now, start.addingTimeInterval(signal.after.seconds)) }
                        let id = "test-signal-\(self.signals.count - signals.count)"
                        append(.signalReceived(id: id, name: signal.name, input: signal.input))
                        run.deliverSignal(name: signal.name, input: signal.input, id: id)
                        run.settle()
                        continue
                    }
                    guard let next else {
                        parked = firstPark ?? "the workflow waits, but no activity is running, no timer is set and no signal is left to send"
                        break
                    }
                    let timer = timers.remove(at: next)
                    state.withLock { $0.now = max($0.now, timer.fireAt) }
                    append(.timerFired(position: timer.position))
                    run.resolve(timer.position, .success(.null))
                } else if let input = await pending.next() {
                    switch input {
                    case .outcome(let position, let result, let attempts):
                        waiting -= 1
                        let call = calls[position]!
                        switch result {
                        case .success(let output):
                            append(.activityCompleted(position: position, attempt: attempts, output: output))
                            run.resolve(position, .success(output))
                        case .failure(let failure) where call.options.onFinalFailure == .throw || failure.isCancellation:
                            append(.activityFailed(position: position, attempt: attempts, failure: failure))
                            run.resolve(position, .failure(ActivityError(activity: call.activity, failure: failure)))
                        case .failure(let failure):
                            append(.activityParked(position: position, attempt: attempts, failure: failure))
                            firstPark = firstPark ?? "waiting for dead-letter replay: \(call.activity) (position \(position)) failed: \(failure)"
                        }
                    case .child(let position, let result):
                        waiting -= 1
                        let command = childCommands[position]
                        let outcome: Result<JSONText, ActivityFailure>?
                        switch result {
                        case .success(let child):
                            childRuns[child.workflowID] = child
                            switch child.status {
                            case .completed: outcome = .success(child.output ?? .null)
                            case .parked:
                                // As in the coordinator, the parent waits on a parked child.
                                outcome = nil
                                firstPark = firstPark ?? "child workflow \(child.workflowID) parked: \(child.parkedReason ?? "")"
                            default: outcome = .failure(child.error ?? .nonRetryable(.unknown, "child workflow \(child.workflowID) ended \(child.status.rawValue)"))
                            }
                        case .failure(let failure):
                            outcome = .failure(failure)
                        }
                        switch outcome {
                        case .success(let output)?:
                            append(.childCompleted(position: position, output: output))
                            run.resolve(position, .success(output))
                        case .failure(let failure)?:
                            append(.childFailed(position: position, failure: failure))
                            run.resolve(position, .failure(ChildWorkflowError(child: command, failure: failure)))
                        case nil:
                            break
                        }
                    }
                }
                run.settle()
            }
            let unreceived = run.unreceivedSignals.map { TestSignal(after: .zero, name: $0.name, input: $0.input) }
            state.withLock { $0.leftover = unreceived + signals }
            run.stop()
            group.cancelAll()
            run.executor.drain()
            inbox.finish()
        }
        var ended = result(run: run, parked: parked, registry: registry)
        ended.children = childRuns
        return ended
    }

    /// Calls a stub as a worker would: again after a retryable failure, up to the policy's
    /// attempts, with no wait between them.
    private static func call(_ stub: WorkflowTestEnvironment.Stub?, _ call: ActivityCall, position: Int) async -> Input {
        guard let stub else {
            let failure = ActivityFailure.nonRetryable(.unknownActivity, "no stub for activity \(call.activity): add environment.stub(\(call.activity).self) { … }")
            return .outcome(position: position, .failure(failure), attempts: 1)
        }
        let policy = call.retryPolicy
        var attempt = 1
        while true {
            do {
                return .outcome(position: position, .success(try await stub(call.input)), attempts: attempt)
            } catch {
                let failure = error as? ActivityFailure ?? ActivityFailure(type: "\(type(of: error))", message: "\(error)", retryable: true)
                let exhausted = policy.maximumAttempts > 0 && attempt >= policy.maximumAttempts
                if !failure.retryable || policy.nonRetryableErrorTypes.contains(failure.type) || exhausted || attempt >= 1_000 {
                    return .outcome(position: position, .failure(failure), attempts: attempt)
                }
                attempt += 1
            }
        }
    }

    private func result(run: WorkflowRun, parked: String?, registry: WorkflowRegistry) -> WorkflowTestRun {
        var status = WorkflowStatus.parked
        var output: JSONText?
        var error: ActivityFailure?
        var next: JSONText?
        switch run.ending {
        case .returned(let value)?:
            status = .completed
            output = value
            append(.workflowCompleted(output: value))
        case .threw(let continued as ContinueAsNew)? where parked == nil:
            status = .continuedAsNew
            next = continued.input
            append(.workflowContinuedAsNew(input: continued.input))
        case .threw(let thrown)? where parked == nil:
            let failure: ActivityFailure = switch thrown {
            case let failure as ActivityFailure: failure
            case let activity as ActivityError: .nonRetryable(activity.failure.kind, "\(activity.activity) failed: \(activity.failure.message)")
            case let child as ChildWorkflowError: .nonRetryable(child.failure.kind, "child workflow \(child.workflow) (\(child.workflowID)) failed: \(child.failure.message)")
            default: .nonRetryable(.workflowError, "\(type(of: thrown)): \(thrown)")
            }
            status = .failed
            error = failure
            append(.workflowFailed(failure: failure))
        default:
            break
        }
        let events = state.withLock { $0.events }
        var ended = WorkflowTestRun(
            workflowID: workflowID, workflow: workflowName, status: status, output: output, error: error, parkedReason: status == .parked ? parked : nil,
            history: WorkflowHistory(workflowID: workflowID, workflow: workflowName, events: events), endTime: now, registry: registry
        )
        ended.runNumber = runNumber
        ended.nextInput = next
        return ended
    }

    /// The run's clock: it moves only when a sleep ends, and sleeping on it directly is a
    /// mistake in workflow code (use `context.sleep`), which it reports at once.
    private struct TestClock: WallClock {
        let engine: TestEngine
        var now: WallInstant { WallInstant(engine.now) }
        var minimumResolution: Duration { .milliseconds(1) }
        func sleep(until deadline: WallInstant, tolerance: Duration?) async throws {
            throw ActivityFailure.nonRetryable(.workflowError, "workflow code slept on a clock: use context.sleep(for:), which the journal records")
        }
    }
}
