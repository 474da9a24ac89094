import FlowCoordinator
import FlowCore
import Foundation
import Logging
import Synchronization

/// Runs a workflow in the test's own process, against activity stubs the test supplies and
/// a clock that skips time, and hands back its journal to inspect: as TemporalTestKit is
/// for Temporal's Swift SDK.
///
/// ```swift
/// var environment = WorkflowTestEnvironment()
/// environment.stub(ParseDocument.self) { input in .init(lines: ["a", "b"]) }
/// environment.stub(StoragePut.self) { _ in throw ActivityFailure.nonRetryable(.invalidInput, "full") }
/// let run = try await environment.run(DocumentOnboarding(), input: .init(path: "a.txt"))
/// #expect(run.status == .parked)
/// #expect(run.calls(of: ParseDocument.self).count == 1)
/// ```
///
/// The workflow's code runs on the coordinator's own executor, with its positions,
/// markers and replay rules; what differs is only that activities are the stubs and
/// `sleep` returns at once, the clock moved to its end (a one-hour sleep takes no time).
/// A stub that throws a retryable failure is called again up to the retry policy's
/// attempts, without the waits between them; a failure for good parks its step or is
/// thrown into the code, as the call's options say. As in the coordinator, a parked step
/// holds up only the code waiting on it: the other branches run on, and the run stops,
/// `parked`, once nothing else is in flight.
public struct WorkflowTestEnvironment: Sendable {
    typealias Stub = @Sendable (JSONText) async throws -> JSONText

    private var stubs: [String: Stub] = [:]
    private var signals: [TestSignal] = []
    /// When the workflow starts; the clock moves on from it only by sleeps.
    public var startTime: Date
    public var logger: Logger

    public init(startTime: Date = Date(timeIntervalSince1970: 1_800_000_000), logger: Logger = Logger(label: "flow.test-kit")) {
        self.startTime = startTime
        self.logger = logger
    }

    /// Answers every call of activity `A` with `body`. Throw ``ActivityFailure`` to fail
    /// it (retryable or not); any other error counts as a retryable failure, as on a worker.
    public mutating func stub<A: ActivityDeclaration>(_ activity: A.Type, _ body: @escaping @Sendable (A.Input) async throws -> A.Output) {
        stubs[A.name] = { input in
            try JSONText(encoding: try await body(try input.decode(A.Input.self)))
        }
    }

    /// Sends signal `S` with `input` to the run, `after` its start on the run's clock. It
    /// arrives once nothing is in flight (no stub running) and the clock has reached its
    /// time, before a timer that is due later; signals arrive in the order sent.
    public mutating func signal<S: SignalDeclaration>(_ signal: S.Type, _ input: S.Input, after: Duration = .zero) throws {
        signals.append(TestSignal(after: after, name: S.name, input: try JSONText(encoding: input)))
    }

    /// Runs `workflow` with `input` to its end, or until it parks or waits for something
    /// no stub, timer or signal will bring, and returns the run.
    public func run<W: Workflow>(_ workflow: W, input: W.Input, id: String = "test-workflow") async throws -> WorkflowTestRun {
        var registry = WorkflowRegistry()
        registry.register(workflow)
        let engine = TestEngine(workflowID: id, workflowName: W.name, stubs: stubs, signals: signals, start: startTime, logger: logger)
        return try await engine.run(registry: registry, input: try JSONText(encoding: input))
    }
}

/// A finished test run: its end, its journal, and the calls it made.
public struct WorkflowTestRun: Sendable {
    public var workflowID: String
    public var workflow: String
    /// `completed`, `failed`, `cancelled`, or `parked` (a step failed for good, or the
    /// workflow waits on nothing that will come).
    public var status: WorkflowStatus
    public var output: JSONText?
    public var error: ActivityFailure?
    /// Why the run stopped short of an end, when it did.
    public var parkedReason: String?
    /// The journal, as the coordinator would have written it.
    public var history: WorkflowHistory
    /// The clock when the run stopped: the start plus every sleep.
    public var endTime: Date
    /// The workflow's code, for queries.
    var registry: WorkflowRegistry

    /// Asks the workflow query `Q` as it stood when the run stopped: its code is replayed
    /// from the run's journal, as the coordinator does for a workflow it has not loaded.
    public func query<Q: QueryDeclaration>(_ query: Q.Type) async throws -> Q.Output {
        let answer = try await WorkflowReplayer(registry: registry, logger: Logger(label: "flow.test-kit")).query(history, name: Q.name)
        return try answer.decode(Q.Output.self)
    }

    /// The output, decoded.
    public func output<Output: Decodable>(as type: Output.Type) throws -> Output {
        guard let output else { throw ActivityFailure.nonRetryable(.outputMismatch, "the run has no output: it ended \(status.rawValue)\(error.map { " with \($0)" } ?? "")") }
        return try output.decode(type)
    }

    /// The journal's checked state: its commands by position and their outcomes.
    public var journal: WorkflowJournal {
        get throws { try WorkflowJournal(history.events) }
    }

    /// The inputs of every call of activity `A`, in position order.
    public func calls<A: ActivityDeclaration>(of activity: A.Type) throws -> [A.Input] {
        try history.events.compactMap { entry in
            guard case .activityScheduled(let scheduled) = entry.event, scheduled.activity == A.name else { return nil }
            return try scheduled.input.decode(A.Input.self)
        }
    }
}

/// A signal a test sends, `after` the run's start.
struct TestSignal: Sendable {
    var after: Duration
    var name: String
    var input: JSONText
}

/// The engine of one test run: the coordinator's loop with the store and the broker
/// replaced by an in-memory journal and the stubs.
private final class TestEngine: Sendable {
    private enum Input: Sendable {
        case outcome(position: Int, Result<JSONText, ActivityFailure>, attempts: Int)
    }

    private struct State {
        var events: [JournalEntry] = []
        var now: Date
    }

    let workflowID: String
    let workflowName: String
    let stubs: [String: WorkflowTestEnvironment.Stub]
    let signals: [TestSignal]
    let logger: Logger
    private let state: Mutex<State>

    init(workflowID: String, workflowName: String, stubs: [String: WorkflowTestEnvironment.Stub], signals: [TestSignal], start: Date, logger: Logger) {
        self.workflowID = workflowID
        self.workflowName = workflowName
        self.stubs = stubs
        self.signals = signals
        self.logger = logger
        self.state = Mutex(State(now: start))
    }

    private var now: Date { state.withLock { $0.now } }

    private func append(_ event: WorkflowEvent) {
        state.withLock { state in
            state.events.append(JournalEntry(sequence: Int64(state.events.count + 1), epoch: 0, recordedAt: state.now, event: event))
        }
    }

    func run(registry: WorkflowRegistry, input: JSONText) async throws -> WorkflowTestRun {
        let entry = registry.entry(named: workflowName)!
        let (inputs, inbox) = AsyncStream<Input>.makeStream()
        let run = WorkflowRun(workflowID: workflowID, workflowName: workflowName, recorded: []) {}
        let context = WorkflowContext(run: run, startedAt: now, clock: TestClock(engine: self), logger: logger)
        append(.workflowStarted(name: workflowName, input: input))
        var calls: [Int: ActivityCall] = [:]
        var timers: [(position: Int, fireAt: Date)] = []
        let start = now
        // In the order sent, each at its time; a stable sort keeps that order for equal times.
        var signals = self.signals.enumerated().sorted { ($0.element.after, $0.offset) < ($1.element.after, $1.offset) }.map(\.element)
        var parked: String?
        /// Why the first step that parked did: the run's reason once nothing else moves.
        var firstPark: String?

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
                            stepKey: "\(call.activity)@\(command.position)"
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
                        run.deliverSignal(name: signal.name, input: signal.input)
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
                } else if case .outcome(let position, let result, let attempts)? = await pending.next() {
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
                }
                run.settle()
            }
            run.stop()
            group.cancelAll()
            run.executor.drain()
            inbox.finish()
        }
        return result(run: run, parked: parked, registry: registry)
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
        switch run.ending {
        case .returned(let value)?:
            status = .completed
            output = value
            append(.workflowCompleted(output: value))
        case .threw(let thrown)? where parked == nil:
            let failure: ActivityFailure = switch thrown {
            case let failure as ActivityFailure: failure
            case let activity as ActivityError: .nonRetryable(activity.failure.kind, "\(activity.activity) failed: \(activity.failure.message)")
            default: .nonRetryable(.workflowError, "\(type(of: thrown)): \(thrown)")
            }
            status = .failed
            error = failure
            append(.workflowFailed(failure: failure))
        default:
            break
        }
        let events = state.withLock { $0.events }
        return WorkflowTestRun(
            workflowID: workflowID, workflow: workflowName, status: status, output: output, error: error, parkedReason: status == .parked ? parked : nil,
            history: WorkflowHistory(workflowID: workflowID, workflow: workflowName, events: events), endTime: now, registry: registry
        )
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
