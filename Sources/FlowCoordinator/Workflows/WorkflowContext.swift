import FlowCore
import Foundation
import Logging

/// What a running workflow uses to call activities, wait, and know where it is. Everything
/// that must come out the same on a replay goes through here: each call is a command at
/// the next position of the workflow's journal.
public final class WorkflowContext: Sendable {
    /// The workflow's id (the idempotency key of its start).
    public let workflowID: String
    /// The workflow's name.
    public let workflowName: String
    /// When the workflow first started: the same on every replay.
    public let startedAt: Date
    /// A logger carrying the workflow's id.
    public let logger: Logger

    let run: WorkflowRun
    private let clock: any WallClock

    package init(run: WorkflowRun, startedAt: Date, clock: any WallClock, logger: Logger) {
        self.run = run
        self.workflowID = run.workflowID
        self.workflowName = run.workflowName
        self.startedAt = startedAt
        self.clock = clock
        var logger = logger
        logger[metadataKey: "workflow.id"] = "\(run.workflowID)"
        logger[metadataKey: "workflow.name"] = "\(run.workflowName)"
        self.logger = logger
    }

    /// Runs an activity on its queue's worker and returns its output. On a replay, a step
    /// that already finished returns its recorded output without being sent again.
    ///
    /// Throws ``ActivityError`` when the activity fails for good and `options` say
    /// `.throw` (by default the workflow parks until the message is replayed), or when the
    /// coordinator gives up waiting for it.
    public func execute<A: ActivityDeclaration>(_ activity: A.Type, _ input: A.Input, options: ActivityOptions = .init()) async throws -> A.Output {
        // An activity whose input or output is JSON already (`JSONText`) passes it through
        // as it is, not encoded and parsed again.
        let call = ActivityCall(
            activity: A.name, queue: A.queue, input: try input as? JSONText ?? JSONText(encoding: input), options: options,
            declaredTimeout: A.startToCloseTimeout, declaredRetryPolicy: A.retryPolicy
        )
        let output = try await run.perform(.activity(call))
        if let output = output as? A.Output { return output }
        do {
            return try output.decode(A.Output.self)
        } catch {
            throw ActivityError(
                activity: A.name,
                failure: .nonRetryable(.outputMismatch, "the output of \(A.name) does not decode as \(A.Output.self): \(error). Is the worker a different version?")
            )
        }
    }

    /// Ends this run and starts the workflow's next run under the same id, with `input` and
    /// a journal of its own: how a workflow that lives long (a loop over signals, a
    /// subscription) keeps its history bounded. Throw what it returns:
    ///
    /// ```swift
    /// if context.commandCount > 500 { throw context.continueAsNew(with: state) }
    /// ```
    ///
    /// The run ends `continued_as_new` and is kept as `<id>@run-<n>`; the next run has the
    /// workflow's id, parent, result recipients, memo and search attributes. Signals that
    /// arrive meanwhile go to the next run. Its activities that are still open are asked
    /// to stop, and its children's parent-close policies apply.
    public func continueAsNew<Input: Encodable>(with input: Input) -> any Error {
        do {
            return ContinueAsNew(input: try input as? JSONText ?? JSONText(encoding: input))
        } catch {
            return ActivityFailure.nonRetryable(.workflowError, "cannot continue \(workflowID) as new: its input does not encode: \(error)")
        }
    }

    /// Which run of its workflow id this is: 1, then one more for each continue-as-new or reset.
    public var runNumber: Int { run.runNumber }

    /// How many commands (activities, timers, children, recorded values) this run has
    /// issued: the same at each point on a replay, so a workflow may decide on it when to
    /// continue as new.
    public var commandCount: Int { run.issuedCount }

    /// Waits durably: a restart of the coordinator does not restart the wait, and a wait
    /// that ended while the coordinator was down ends at once when it returns.
    public func sleep(for duration: Duration) async throws {
        _ = try await run.perform(.timer(duration))
    }

    /// Runs `body` shielded from cancellation: the activities, child workflows and sleeps
    /// it calls go on after the workflow is cancelled, so it can clean up:
    ///
    /// ```swift
    /// do {
    ///     try await context.execute(Train.self, job)
    /// } catch is CancellationError {
    ///     try await context.shielded { try await context.execute(ReleaseGPU.self, job) }
    ///     throw CancellationError()
    /// }
    /// ```
    ///
    /// A terminated workflow (`flow workflow cancel --terminate`, a parent-close policy of
    /// `terminate`) is stopped even here.
    public func shielded<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await WorkflowRun.$isShielded.withValue(true) { try await body() }
    }

    /// Waits for the next signal `S` sent to this workflow (`flow.workflow.signal`) and
    /// returns its input. Signals are received in the order they were recorded, each once;
    /// one sent before the workflow asked waits for it. A restart replays them at the same
    /// points. A signal whose input does not decode as `S.Input` is skipped, with a warning
    /// in the log; it stays in the workflow's history.
    public func receive<S: SignalDeclaration>(_ signal: S.Type) async throws -> S.Input {
        while true {
            if let received = try await run.receive([S.name], timeout: nil), let input = decode(received.input, as: S.self) { return input }
        }
    }

    /// Waits for the next signal `S`, at most `timeout`: a durable wait, as `sleep` is.
    /// Returns nil when the time passed first.
    public func receive<S: SignalDeclaration>(_ signal: S.Type, timeout: Duration) async throws -> S.Input? {
        while true {
            guard let received = try await run.receive([S.name], timeout: timeout) else { return nil }
            if let input = decode(received.input, as: S.self) { return input }
        }
    }

    /// Waits for the first of several signals (`approve_training` or `reject_training`),
    /// at most `timeout` when one is given; nil when the time passed first. Ask the result
    /// which one came with ``ReceivedSignal/input(as:)``.
    public func receive(oneOf signals: [any SignalDeclaration.Type], timeout: Duration? = nil) async throws -> ReceivedSignal? {
        guard let received = try await run.receive(Set(signals.map { $0.name }), timeout: timeout) else { return nil }
        return ReceivedSignal(name: received.name, input: received.input)
    }

    /// Handles signal `S` with `handler`, from now on: each signal of that name, in the
    /// order recorded, goes to it instead of to `receive`; those that came before go to it
    /// at once. A handler changes the workflow's state (``WorkflowState``); the code waits
    /// for the change with ``condition(timeout:_:)``. A signal whose input does not decode
    /// is skipped, with a warning in the log.
    public func onSignal<S: SignalDeclaration>(_ signal: S.Type, _ handler: @escaping @Sendable (S.Input) -> Void) {
        let logger = self.logger
        run.registerSignalHandler(S.name) { text in
            do {
                handler(try text.decode(S.Input.self))
            } catch {
                logger.warning("a signal's input does not decode; skipped", metadata: ["signal.name": "\(S.name)", "error": "\(error)"])
            }
        }
    }

    /// Takes update `U` with `handler`, from now on: `flow workflow update ID NAME` and
    /// `flow.workflow.update` call `validator` first, which throws to reject the update
    /// (nothing is recorded), then record it and call `handler`, which changes the
    /// workflow's state (``WorkflowState``) and returns the caller's result. A replay runs
    /// the handler again at the same point. What the handler throws is the caller's
    /// failure; the workflow goes on.
    public func onUpdate<U: UpdateDeclaration>(
        _ update: U.Type, validator: (@Sendable (U.Input) throws -> Void)? = nil, _ handler: @escaping @Sendable (U.Input) throws -> U.Output
    ) {
        @Sendable func decode(_ text: JSONText) throws -> U.Input {
            do {
                return try text.decode(U.Input.self)
            } catch {
                throw ActivityFailure.nonRetryable(.invalidInput, "the input of update \(U.name) does not decode as \(U.Input.self): \(error)")
            }
        }
        run.registerUpdate(
            U.name,
            validate: { text in try validator?(try decode(text)) },
            apply: { text in try JSONText(encoding: handler(try decode(text))) }
        )
    }

    /// Waits, durably, until `predicate` holds: it is checked now and after every fact the
    /// workflow takes (a signal, an activity's outcome, a timer), at the same points on
    /// every replay. With `timeout`, at most that long (a durable timer, as `sleep` is).
    /// Returns true when the predicate held, false when the time passed first. The
    /// predicate reads the workflow's state and must not change it.
    @discardableResult
    public func condition(timeout: Duration? = nil, _ predicate: @escaping @Sendable () -> Bool) async throws -> Bool {
        try await run.condition(timeout: timeout, predicate)
    }

    /// Answers query `Q` with `handler`, from now on: `flow workflow query ID NAME` and
    /// `flow.workflow.query` call it, between two facts of the journal, and send back what
    /// it returns. A handler reads the workflow's state (``WorkflowState``); it must not
    /// change it, and nothing it does is recorded. A later call for the same query
    /// replaces the handler.
    public func onQuery<Q: QueryDeclaration>(_ query: Q.Type, _ handler: @escaping @Sendable () throws -> Q.Output) {
        run.registerQuery(Q.name) { try JSONText(encoding: handler()) }
    }

    private func decode<S: SignalDeclaration>(_ text: JSONText, as signal: S.Type) -> S.Input? {
        do {
            return try text.decode(S.Input.self)
        } catch {
            logger.warning("a signal's input does not decode; skipped", metadata: ["signal.name": "\(S.name)", "error": "\(error)"])
            return nil
        }
    }

    /// Whether to take the new path of a code change that would otherwise not replay (a
    /// step added, removed or moved). Runs that were recorded before the change take the
    /// old path; runs that reach this point with the change deployed take the new one and
    /// record a marker (`patch:<id>`), so they take it again on every replay.
    ///
    /// ```swift
    /// if try context.patched("store-onboarding-report") {
    ///     report = try await context.execute(StoragePut.self, …)   // the new step
    /// }
    /// ```
    ///
    /// Once no run of the old path is left, replace the call with ``deprecatePatch(_:)``;
    /// once no run with the marker is left, remove that too.
    public func patched(_ changeID: String) throws -> Bool {
        try run.patched(changeID, deprecated: false)
    }

    /// The second stage of retiring a change made with ``patched(_:)``: the new path is the
    /// only one, runs that recorded the marker still replay, and new runs record none.
    public func deprecatePatch(_ changeID: String) throws {
        _ = try run.patched(changeID, deprecated: true)
    }

    /// The coordinator's time when the workflow first got here; the same on every replay.
    /// Use it instead of `Date()`, which a replay would read anew.
    public var now: Date {
        get throws {
            try sideEffect("now") { clock.now.date }
        }
    }

    /// A random number in `range`, drawn once and read back on every replay.
    public func random(in range: Range<Double>) throws -> Double {
        try sideEffect("random") { Double.random(in: range) }
    }

    /// A new UUID, made once and read back on every replay.
    public func uuid() throws -> UUID {
        try sideEffect("uuid") { UUID() }
    }

    /// Runs `body` once and records what it returns; every replay reads the recorded value
    /// instead of running it again. For short, local, non-failing work whose result must
    /// not change on a replay (an id, a reading of configuration); anything that talks to
    /// the outside world belongs in an activity.
    public func sideEffect<Value: Codable & Sendable>(_ name: String = "side_effect", _ body: () throws -> Value) throws -> Value {
        let value = try run.marker(name) { try JSONText(encoding: body()) }
        return try value.decode(Value.self)
    }

    /// Files the workflow under search attributes, for lists to filter by:
    /// `flow workflow list --where 'document_format = "pdf" AND pages >= 10'`. A nil value
    /// removes one. Recorded in the journal (a marker), so a replay files the same.
    public func upsertSearchAttributes(_ attributes: [String: SearchAttribute?]) throws {
        try SearchAttribute.validate(attributes)
        _ = try run.marker("search_attributes") { try JSONText(encoding: attributes) }
    }

    /// Adds to the workflow's memo: a JSON object shown with it (`flow workflow show`, the
    /// console) and not searched. A null value removes a key. Recorded in the journal.
    public func upsertMemo(_ memo: [String: JSONValue]) throws {
        _ = try run.marker("memo") { try JSONText(encoding: JSONValue.object(memo)) }
    }
}

/// A signal ``WorkflowContext/receive(oneOf:timeout:)`` received.
public struct ReceivedSignal: Sendable, Equatable {
    /// Which signal it is.
    public var name: String
    /// Its input as sent.
    public var input: JSONText

    /// Whether it is signal `S`.
    public func `is`<S: SignalDeclaration>(_ signal: S.Type) -> Bool { name == S.name }

    /// Its input as signal `S`'s; throws when it is another signal or does not decode.
    public func input<S: SignalDeclaration>(as signal: S.Type) throws -> S.Input {
        guard name == S.name else { throw ActivityFailure.nonRetryable(.invalidInput, "the signal received is \(name), not \(S.name)") }
        return try input.decode(S.Input.self)
    }
}

/// An activity call as the coordinator sends it.
package struct ActivityCall: Sendable, Equatable {
    package var activity: String
    package var queue: WorkQueue
    package var input: JSONText
    package var options: ActivityOptions
    package var declaredTimeout: Duration
    package var declaredRetryPolicy: RetryPolicy

    package var attemptTimeout: Duration { options.startToCloseTimeout ?? declaredTimeout }
    package var retryPolicy: RetryPolicy { options.retryPolicy ?? declaredRetryPolicy }
}

/// What a workflow throws to continue as new (``WorkflowContext/continueAsNew(with:)``).
public struct ContinueAsNew: Error, Sendable, CustomStringConvertible {
    /// The next run's input.
    public var input: JSONText

    public var description: String { "continue as new with input \(input.text.prefix(300))" }
}
