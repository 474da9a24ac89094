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
///
/// Child workflows (`context.executeChild`) run in the same process against the same
/// stubs once their type is registered (``register(_:)``); each child's run is kept in
/// ``WorkflowTestRun/children``. A child's sleeps move its own clock, not its parent's.
public struct WorkflowTestEnvironment: Sendable {
    typealias Stub = @Sendable (JSONText) async throws -> JSONText

    private var stubs: [String: Stub] = [:]
    private var signals: [TestSignal] = []
    private var children = WorkflowRegistry()
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

    /// Lets the workflow under test start `workflow` as a child workflow; it runs against
    /// the same stubs. A child whose type is not registered fails to start.
    public mutating func register<W: Workflow>(_ workflow: W) {
        children.register(workflow)
    }

    /// Sends signal `S` with `input` to the run, `after` its start on the run's clock. It
    /// arrives once nothing is in flight (no stub running) and the clock has reached its
    /// time, before a timer that is due later; signals arrive in the order sent.
    public mutating func signal<S: SignalDeclaration>(_ signal: S.Type, _ input: S.Input, after: Duration = .zero) throws {
        signals.append(TestSignal(after: after, name: S.name, input: try JSONText(encoding: input)))
    }

    /// Runs `workflow` with `input` to its end, or until it parks or waits for something
    /// no stub, timer or signal will bring, and returns the run. A workflow that continues
    /// as new runs on in its next run, as on the coordinator, with the signals the run did
    /// not take; the last run is returned, the ones before in ``WorkflowTestRun/previousRuns``.
    public func run<W: Workflow>(_ workflow: W, input: W.Input, id: String = "test-workflow") async throws -> WorkflowTestRun {
        var registry = WorkflowRegistry()
        registry.register(workflow)
        var input = try JSONText(encoding: input)
        var signals = self.signals
        var start = startTime
        var previous: [WorkflowTestRun] = []
        for number in 1...Self.maximumRuns {
            let engine = TestEngine(
                workflowID: id, workflowName: W.name, runNumber: number, stubs: stubs, signals: signals, children: children, start: start, origin: startTime, logger: logger
            )
            var run = try await engine.run(registry: registry, input: input)
            guard run.status == .continuedAsNew, let next = run.nextInput, number < Self.maximumRuns else {
                run.previousRuns = previous
                return run
            }
            previous.append(run)
            (input, signals, start) = (next, engine.leftoverSignals, run.endTime)
        }
        preconditionFailure("the loop returns at its last run")
    }

    /// How many runs a test follows a workflow that keeps continuing as new through; the
    /// last is returned as it ended (`continued_as_new`).
    static let maximumRuns = 1_000
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
    /// The runs of the child workflows it started, by child workflow id.
    public var children: [String: WorkflowTestRun] = [:]
    /// Which run of the workflow this is: 1, then one more for each continue-as-new.
    public var runNumber = 1
    /// The runs before this one, first to last, when the workflow continued as new.
    public var previousRuns: [WorkflowTestRun] = []
    /// The next run's input, when this run continued as new.
    var nextInput: JSONText?
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
