import FlowCore
import Foundation
import Synchronization

/// One run of a workflow's code in this coordinator: the executor it runs on, the commands
/// it has issued by position, and the code suspended on each. The workflow's code talks to
/// it through ``WorkflowContext`` (synchronously, on the run's executor); the engine
/// resolves positions and drains the executor.
///
/// **Positions.** The n-th command the code issues (an activity, a timer, a marker) takes
/// position n. A position the journal already records must be asked for with the same
/// kind of command (and the same activity or marker name); anything else is a
/// ``WorkflowNondeterminism``, which stops the run: nothing more is sent or recorded for
/// it. Inputs are not compared, so an input type may gain a field without open workflows
/// running their finished steps again.
package final class WorkflowRun: Sendable {
    /// What the code asks for at a position.
    package enum Request: Sendable {
        case activity(ActivityCall)
        case timer(Duration)
        case marker(name: String)
        case child(ChildCall)

        var summary: String {
            switch self {
            case .activity(let call): "activity \(call.activity)"
            case .child(let call): "child workflow \(call.workflow)"
            case .timer(let duration): "a timer of \(duration)"
            case .marker(let name): "marker \(name)"
            }
        }
    }

    /// A command the code issued that the journal does not have yet: the engine records it.
    package struct NewCommand: Sendable {
        package var position: Int
        package var request: Request
        /// A marker's value, computed when the code asked for it.
        package var value: JSONText?
    }

    struct State {
        var recorded: [WorkflowJournal.Command]
        var requests: [Request] = []
        var new: [NewCommand] = []
        var waiting: [Int: CheckedContinuation<JSONText, any Error>] = [:]
        var early: [Int: Result<JSONText, any Error>] = [:]
        /// Positions the code stopped waiting on because its task was cancelled: the engine
        /// asks the workers to cancel the activities still running there.
        var abandoned: [Int] = []
        package var ending: WorkflowRunEnd?
        package var divergence: WorkflowNondeterminism?
        var stopped = false
        /// How many journal entries a replay has still to apply: while any is left, the
        /// code is re-running what older code did (``patched(_:deprecated:)``).
        var replayRemaining = 0
        /// Signals delivered that no `receive` has taken yet, in the order recorded.
        var signals: [(name: String, input: JSONText, id: String)] = []
        /// The code's `receive`s waiting for a signal, oldest first.
        var receivers: [Receiver] = []
        var nextReceiver = 0
        /// The timer positions of `receive`s with a timeout: which receiver each would end.
        var timeouts: [Int: Int] = [:]
        /// The code's query handlers, by query name.
        var queries: [String: @Sendable () throws -> JSONText] = [:]
        /// The code's update handlers, by update name: the validator, then the handler.
        var updateHandlers: [String: (validate: @Sendable (JSONText) throws -> Void, apply: @Sendable (JSONText) throws -> JSONText)] = [:]
        /// The code's signal handlers, by signal name: a signal with one goes to it, not to `receive`.
        var signalHandlers: [String: @Sendable (JSONText) -> Void] = [:]
        /// The code's `condition`s waiting for their predicate.
        var conditions: [Condition] = []
        /// The timer positions of `condition`s with a timeout: which condition each would end.
        var conditionTimeouts: [Int: Int] = [:]
    }

    /// A `condition` waiting for its predicate to hold (false when its timeout fires first).
    struct Condition {
        var token: Int
        var predicate: @Sendable () -> Bool
        var continuation: CheckedContinuation<Bool, any Error>
    }

    /// A `receive` waiting for a signal of one of its names (nil when its timeout fires first).
    struct Receiver {
        var token: Int
        var names: Set<String>
        var continuation: CheckedContinuation<(name: String, input: JSONText)?, any Error>
    }

    package let workflowID: String
    package let workflowName: String
    /// Which run of the workflow id this is (``WorkflowRecord/run``).
    package let runNumber: Int
    package let executor: WorkflowExecutor
    /// Everything the run knows, behind one lock (`WorkflowRun+Signals.swift` shares it).
    let state: Mutex<State>

    package init(
        workflowID: String, workflowName: String, runNumber: Int = 1, recorded: [WorkflowJournal.Command], jobArrivedWhileIdle: @escaping @Sendable () -> Void
    ) {
        self.workflowID = workflowID
        self.workflowName = workflowName
        self.runNumber = runNumber
        self.executor = WorkflowExecutor(jobArrivedWhileIdle: jobArrivedWhileIdle)
        self.state = Mutex(State(recorded: recorded))
    }

    // MARK: The code's side

    /// Whether the code runs in ``WorkflowContext/shielded(_:)``: its commands go on
    /// after its task is cancelled (a cancel of the workflow), to clean up.
    @TaskLocal static var isShielded = false

    /// Issues a command and suspends the code until the engine resolves its position. A
    /// cancelled task issues nothing (it throws `CancellationError`), unless shielded.
    func perform(_ request: Request) async throws -> JSONText {
        if Self.isShielded {
            let position = try issue(request)
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONText, any Error>) in
                let early = state.withLock { state -> Result<JSONText, any Error>? in
                    // A run stopped meanwhile (terminated) ends shielded waits too.
                    if state.stopped { return .failure(CancellationError()) }
                    if let early = state.early.removeValue(forKey: position) { return early }
                    state.waiting[position] = continuation
                    return nil
                }
                if let early { continuation.resume(with: early) }
            }
        }
        try Task.checkCancellation()
        let position = try issue(request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONText, any Error>) in
                let early = state.withLock { state -> Result<JSONText, any Error>? in
                    if let early = state.early.removeValue(forKey: position) { return early }
                    state.waiting[position] = continuation
                    return nil
                }
                if let early { continuation.resume(with: early) }
                // A task cancelled before it waited: its cancellation handler found nothing to end.
                if Task.isCancelled { cancel(position) }
            }
        } onCancel: {
            cancel(position)
        }
    }

    /// A marker: the value the journal recorded at this position, or `compute()`'s, which
    /// the engine then records. Never suspends.
    func marker(_ name: String, compute: () throws -> JSONText) throws -> JSONText {
        let recorded = try state.withLock { state -> JSONText? in
            try Self.check(&state, .marker(name: name), workflowID: workflowID)
            if case .marker(_, let value)? = state.recorded[safe: state.requests.count - 1] { return value }
            return nil
        }
        if let recorded { return recorded }
        let value = try compute()
        state.withLock { state in state.new.append(NewCommand(position: state.requests.count - 1, request: .marker(name: name), value: value)) }
        return value
    }

    /// Whether the code takes the path of change `id`. A run that recorded the change's
    /// marker here takes it again; a run older code recorded takes the old path (no marker
    /// at this point, and the journal goes on past it); a run that gets here live records
    /// the marker and takes the new path. `deprecated`: the old path is gone, so the new
    /// one is taken either way, and no new marker is recorded; a marker recorded before is
    /// still read, keeping positions as they were.
    func patched(_ id: String, deprecated: Bool) throws -> Bool {
        let name = "patch:\(id)"
        return try state.withLock { state in
            guard !state.stopped else { throw CancellationError() }
            let position = state.requests.count
            if case .marker(name, _)? = state.recorded[safe: position] {
                state.requests.append(.marker(name: name))
                return true
            }
            if deprecated { return true }
            if position < state.recorded.count || state.replayRemaining > 0 { return false }
            state.requests.append(.marker(name: name))
            state.new.append(NewCommand(position: position, request: .marker(name: name), value: .null))
            return true
        }
    }

    func issue(_ request: Request) throws -> Int {
        try state.withLock { state in
            try Self.check(&state, request, workflowID: workflowID)
            let position = state.requests.count - 1
            if position >= state.recorded.count { state.new.append(NewCommand(position: position, request: request, value: nil)) }
            return position
        }
    }

    /// Takes the next position for `request`, checking it against the journal's command
    /// there. A mismatch stops the run and throws into the code.
    private static func check(_ state: inout State, _ request: Request, workflowID: String) throws {
        guard !state.stopped else { throw CancellationError() }
        let position = state.requests.count
        if position < state.recorded.count {
            let recorded = state.recorded[position]
            let matches: Bool = switch (recorded, request) {
            case (.activity(let scheduled, _), .activity(let call)): scheduled.activity == call.activity
            case (.timer, .timer): true
            case (.marker(let name, _), .marker(let asked)): name == asked
            case (.child(let child, _), .child(let call)): child.workflow == call.workflow
            default: false
            }
            if !matches {
                let divergence = WorkflowNondeterminism(workflowID: workflowID, position: position, recorded: recorded.summary, requested: request.summary)
                state.divergence = state.divergence ?? divergence
                state.stopped = true
                throw divergence
            }
        }
        state.requests.append(request)
    }

    private func cancel(_ position: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<JSONText, any Error>? in
            guard let waiter = state.waiting.removeValue(forKey: position) else { return nil }
            state.abandoned.append(position)
            return waiter
        }
        waiter?.resume(throwing: CancellationError())
    }

    /// The positions the code stopped waiting on since the last call (``State/abandoned``).
    package func takeAbandoned() -> [Int] {
        state.withLock { state in
            defer { state.abandoned.removeAll() }
            return state.abandoned
        }
    }

    /// The code returned or threw.
    package func finish(_ ending: WorkflowRunEnd) {
        state.withLock { $0.ending = $0.ending ?? ending }
    }

    // MARK: The engine's side

    /// Resumes the code waiting at `position` (its job runs at the next drain).
    package func resolve(_ position: Int, _ outcome: Result<JSONText, any Error>) {
        // The timeout of a `receive`: it ends the wait with no signal.
        let timedOut = state.withLock { state -> Receiver? in
            guard let token = state.timeouts.removeValue(forKey: position), let index = state.receivers.firstIndex(where: { $0.token == token }) else { return nil }
            return state.receivers.remove(at: index)
        }
        if let timedOut {
            timedOut.continuation.resume(with: outcome.map { _ in nil })
            return
        }
        // The timeout of a `condition`: it ends the wait, the predicate unmet.
        let lapsed = state.withLock { state -> Condition? in
            guard let token = state.conditionTimeouts.removeValue(forKey: position), let index = state.conditions.firstIndex(where: { $0.token == token }) else { return nil }
            return state.conditions.remove(at: index)
        }
        if let lapsed {
            lapsed.continuation.resume(with: outcome.map { _ in false })
            return
        }
        let waiter = state.withLock { state in
            if let waiter = state.waiting.removeValue(forKey: position) { return Optional(waiter) }
            state.early[position] = outcome
            return nil
        }
        waiter?.resume(with: outcome)
    }

    /// The commands issued since the last call, in position order.
    package func takeNewCommands() -> [NewCommand] {
        state.withLock { state in
            defer { state.new.removeAll() }
            return state.new
        }
    }

    /// What the code asked for at a position it has issued.
    func request(at position: Int) -> Request? {
        state.withLock { $0.requests[safe: position] }
    }

    package var issuedCount: Int { state.withLock { $0.requests.count } }

    /// The key of the step at `position`, the last part of its message id, which workers
    /// keep results under. A later run's steps carry their run (`run-2.<activity>@<n>`):
    /// the same position in the next run is another step, whose result a worker must not
    /// find already kept.
    package func stepKey(activity: String, position: Int) -> String {
        runNumber == 1 ? "\(activity)@\(position)" : "run-\(runNumber).\(activity)@\(position)"
    }
    /// How many activities the code called: at its end, the workflow's steps.
    var activityCount: Int { state.withLock { $0.requests.count { if case .activity = $0 { true } else { false } } } }
    package var ending: WorkflowRunEnd? { state.withLock { $0.ending } }
    package var divergence: WorkflowNondeterminism? { state.withLock { $0.divergence } }

    /// Runs the code against its journal: drains it, then resolves each recorded outcome in
    /// journal order, draining after each, and checks that the code issued every recorded
    /// command. Stops early when the code diverges or ends. `cancel` cancels the code's
    /// tasks, for a recorded cancel request. Returns how many outcomes it applied.
    func replay(_ journal: WorkflowJournal, cancel: () -> Void) -> Int {
        state.withLock { $0.replayRemaining = max(0, journal.entries.count - 1) }
        defer { state.withLock { $0.replayRemaining = 0 } }
        settle()
        var replayed = 0
        for (index, entry) in journal.entries.enumerated() {
            state.withLock { $0.replayRemaining = journal.entries.count - 1 - index }
            if divergence != nil || ending != nil { break }
            switch entry.event {
            case .activityCompleted(let position, _, let output):
                resolve(position, .success(output))
            case .activityFailed(let position, _, let failure), .activityTimedOut(let position, let failure):
                let activity = if case .activity(let scheduled, _)? = journal.commands[safe: position] { scheduled.activity } else { "position \(position)" }
                resolve(position, .failure(ActivityError(activity: activity, failure: failure)))
            case .timerFired(let position):
                resolve(position, .success(.null))
            case .childCompleted(let position, let output):
                resolve(position, .success(output))
            case .childFailed(let position, let failure):
                resolve(position, .failure(ChildWorkflowError(child: journal.commands[safe: position], failure: failure)))
            case .cancelRequested:
                cancel()
            case .signalReceived(let id, let name, let input):
                deliverSignal(name: name, input: input, id: id)
            case .updateAccepted(_, let name, let input):
                // The handler changes the state again; its result is recorded already.
                _ = applyUpdate(name, input)
            default:
                continue
            }
            replayed += 1
            settle()
        }
        checkEveryRecordedCommandIssued()
        return replayed
    }

    /// After a replay: a recorded command the code did not issue is a divergence too (a
    /// step removed, or the code ended sooner).
    private func checkEveryRecordedCommandIssued() {
        state.withLock { state in
            guard state.divergence == nil, state.requests.count < state.recorded.count else { return }
            let position = state.requests.count
            let asked = state.ending == nil ? "no command there yet (it waits on an earlier one)" : "none: the code ended after \(position) commands"
            state.divergence = WorkflowNondeterminism(workflowID: workflowID, position: position, recorded: state.recorded[position].summary, requested: asked)
            state.stopped = true
        }
    }

    /// No more commands: every further request throws `CancellationError`, and every wait
    /// ends with it, shielded ones too. The engine then cancels the code's tasks and
    /// drains, so that they end.
    package func stop() {
        let waiters = state.withLock { state in
            state.stopped = true
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for waiter in waiters { waiter.resume(throwing: CancellationError()) }
    }
}

/// A child workflow the code starts (``WorkflowContext/executeChild(_:_:id:parentClosePolicy:)``).
package struct ChildCall: Sendable {
    package var workflow: String
    package var workflowID: String
    package var input: JSONText
    package var parentClosePolicy: ParentClosePolicy
}

/// How a run of workflow code ended.
package enum WorkflowRunEnd: Sendable {
    case returned(JSONText)
    case threw(any Error)
}

/// The workflow's code asked for a different command at a position its journal records:
/// the code changed in a way that does not replay. The workflow parks with this reason; it
/// re-runs nothing. Deploy code that replays (check it with `flow workflow replay-check`),
/// or cancel the workflow.
public struct WorkflowNondeterminism: Error, Sendable, Equatable, CustomStringConvertible {
    public var workflowID: String
    public var position: Int
    /// The command the journal records at the position.
    public var recorded: String
    /// What the code asked for there.
    public var requested: String

    /// How the reason of a workflow parked for this begins.
    public static let reasonPrefix = "nondeterminism: "

    public var description: String {
        Self.reasonPrefix + "workflow \(workflowID) does not replay: at position \(position) its journal records \(recorded), but the code asked for \(requested). "
            + "Deploy code that replays its journal (check with `flow workflow replay-check`), or cancel the workflow"
    }
}

extension WorkflowJournal.Command {
    /// The command in words, as a nondeterminism report names it.
    var summary: String {
        switch self {
        case .activity(let scheduled, _): "activity \(scheduled.activity)"
        case .timer(let key, _, _): "a timer (\(key))"
        case .marker(let name, _): "marker \(name)"
        case .child(let child, _): "child workflow \(child.workflow)"
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
