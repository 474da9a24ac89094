import FlowCore
import Foundation
import Synchronization

/// What a run's code waits for besides its commands' outcomes, and what it answers:
/// signals (`receive`, and handlers), conditions on its state, queries and updates. The engine delivers
/// signals in journal order and calls ``settle()`` after each fact, so on a replay the
/// code sees each signal and each condition come true at the same point.
extension WorkflowRun {
    /// The next signal named `name` the code has not received, waiting for one when there
    /// is none. With a `timeout`, the wait is a durable timer, a command like `sleep`; nil
    /// when it fires first. A signal that came before the call is taken at once, with no
    /// timer: on a replay the signals arrive at the same points, so the same happens.
    func receive(_ names: Set<String>, timeout: Duration?) async throws -> (name: String, input: JSONText)? {
        let buffered = try state.withLock { state -> (name: String, input: JSONText)? in
            guard !state.stopped else { throw CancellationError() }
            guard let index = state.signals.firstIndex(where: { names.contains($0.name) }) else { return nil }
            let signal = state.signals.remove(at: index)
            return (signal.name, signal.input)
        }
        if let buffered { return buffered }
        let position = try timeout.map { try issue(.timer($0)) }
        let token = state.withLock { state in
            state.nextReceiver += 1
            return state.nextReceiver
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(name: String, input: JSONText)?, any Error>) in
                let now = state.withLock { state -> Result<(name: String, input: JSONText)?, any Error>? in
                    // Its timer fired before the code got to wait.
                    if let position, state.early.removeValue(forKey: position) != nil { return .success(nil) }
                    state.receivers.append(Receiver(token: token, names: names, continuation: continuation))
                    if let position { state.timeouts[position] = token }
                    return nil
                }
                if let now { continuation.resume(with: now) }
                if Task.isCancelled { cancelReceiver(token) }
            }
        } onCancel: {
            cancelReceiver(token)
        }
    }

    /// Answers query `name` with the handler the code registered for it. The engine calls it
    /// between two drains, so the handler reads the state as the last fact left it.
    package func answerQuery(_ name: String) throws -> JSONText {
        let (handler, known) = state.withLock { state in (state.queries[name], state.queries.keys.sorted()) }
        guard let handler else {
            throw ActivityFailure.nonRetryable(
                .invalidInput, "workflow \(workflowID) (\(workflowName)) answers no query named \(name)" + (known.isEmpty ? " (it answers none)" : " (it answers: \(known.joined(separator: ", ")))")
            )
        }
        return try handler()
    }

    func registerQuery(_ name: String, _ handler: @escaping @Sendable () throws -> JSONText) {
        state.withLock { $0.queries[name] = handler }
    }

    /// A signal handler for `name`, from now on; signals of that name that came before wait
    /// no longer and go to it at once, in order.
    func registerSignalHandler(_ name: String, _ handler: @escaping @Sendable (JSONText) -> Void) {
        let waiting = state.withLock { state -> [JSONText] in
            state.signalHandlers[name] = handler
            let waiting = state.signals.filter { $0.name == name }.map(\.input)
            state.signals.removeAll { $0.name == name }
            return waiting
        }
        for input in waiting { handler(input) }
    }

    /// Waits until `predicate` holds, at most `timeout` (a durable timer) when given: true
    /// when it held, false when the time passed first. The engine checks the predicates
    /// after each turn of the code (``settle()``), so they see every fact at the same
    /// point on a replay.
    func condition(timeout: Duration?, _ predicate: @escaping @Sendable () -> Bool) async throws -> Bool {
        guard !state.withLock({ $0.stopped }) else { throw CancellationError() }
        if predicate() { return true }
        let position = try timeout.map { try issue(.timer($0)) }
        let token = state.withLock { state in
            state.nextReceiver += 1
            return state.nextReceiver
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
                let timedOut = state.withLock { state -> Bool in
                    if let position, state.early.removeValue(forKey: position) != nil { return true }
                    state.conditions.append(Condition(token: token, predicate: predicate, continuation: continuation))
                    if let position { state.conditionTimeouts[position] = token }
                    return false
                }
                if timedOut { continuation.resume(returning: false) }
                if Task.isCancelled { cancelCondition(token) }
            }
        } onCancel: {
            cancelCondition(token)
        }
    }

    private func cancelCondition(_ token: Int) {
        let condition = state.withLock { state -> Condition? in
            guard let index = state.conditions.firstIndex(where: { $0.token == token }) else { return nil }
            state.conditionTimeouts = state.conditionTimeouts.filter { $0.value != token }
            return state.conditions.remove(at: index)
        }
        condition?.continuation.resume(throwing: CancellationError())
    }

    /// Runs the code's jobs, then resumes every `condition` whose predicate now holds and
    /// runs the code again, until none is left to resume: one turn of the code.
    package func settle() {
        executor.drain()
        while true {
            let waiting = state.withLock { $0.conditions }
            // Predicates read the workflow's state, not the run's: checked outside its lock.
            let held = Set(waiting.filter { $0.predicate() }.map(\.token))
            guard !held.isEmpty else { return }
            let resumed = state.withLock { state -> [Condition] in
                let resumed = state.conditions.filter { held.contains($0.token) }
                state.conditions.removeAll { held.contains($0.token) }
                state.conditionTimeouts = state.conditionTimeouts.filter { !held.contains($0.value) }
                return resumed
            }
            for condition in resumed { condition.continuation.resume(returning: true) }
            executor.drain()
        }
    }

    private func cancelReceiver(_ token: Int) {
        let receiver = state.withLock { state -> Receiver? in
            guard let index = state.receivers.firstIndex(where: { $0.token == token }) else { return nil }
            state.timeouts = state.timeouts.filter { $0.value != token }
            return state.receivers.remove(at: index)
        }
        receiver?.continuation.resume(throwing: CancellationError())
    }

    /// Hands a recorded signal to the code: to the oldest `receive` waiting for its name,
    /// or to the next one that asks (its job runs at the next drain).
    /// The ids of the signals delivered that no `receive` took: a continue-as-new hands
    /// them to the next run.
    package var unreceivedSignalIDs: [String] { state.withLock { $0.signals.map(\.id) } }
    package var unreceivedSignals: [(name: String, input: JSONText, id: String)] { state.withLock { $0.signals } }

    package func deliverSignal(name: String, input: JSONText, id: String = "") {
        if let handler = state.withLock({ $0.signalHandlers[name] }) {
            handler(input)
            return
        }
        let receiver = state.withLock { state -> Receiver? in
            guard let index = state.receivers.firstIndex(where: { $0.names.contains(name) }) else {
                state.signals.append((name, input, id))
                return nil
            }
            let receiver = state.receivers.remove(at: index)
            state.timeouts = state.timeouts.filter { $0.value != receiver.token }
            return receiver
        }
        receiver?.continuation.resume(returning: (name, input))
    }

    // MARK: Updates

    func registerUpdate(_ name: String, validate: @escaping @Sendable (JSONText) throws -> Void, apply: @escaping @Sendable (JSONText) throws -> JSONText) {
        state.withLock { $0.updateHandlers[name] = (validate, apply) }
    }

    /// Runs update `name`'s validator: throws the rejection, which leaves no trace.
    package func validateUpdate(_ name: String, _ input: JSONText) throws {
        let (handlers, known) = state.withLock { state in (state.updateHandlers[name], state.updateHandlers.keys.sorted()) }
        guard let handlers else {
            throw ActivityFailure.nonRetryable(
                .invalidInput, "workflow \(workflowID) (\(workflowName)) takes no update named \(name)" + (known.isEmpty ? " (it takes none)" : " (it takes: \(known.joined(separator: ", ")))")
            )
        }
        try handlers.validate(input)
    }

    /// Runs update `name`'s handler on the workflow's state: what it returned or threw.
    package func applyUpdate(_ name: String, _ input: JSONText) -> Result<JSONText, ActivityFailure> {
        guard let handlers = state.withLock({ $0.updateHandlers[name] }) else {
            return .failure(.nonRetryable(.invalidInput, "workflow \(workflowID) (\(workflowName)) takes no update named \(name)"))
        }
        do {
            return .success(try handlers.apply(input))
        } catch let failure as ActivityFailure {
            return .failure(failure)
        } catch {
            return .failure(.nonRetryable(.workflowError, "update \(name) failed: \(type(of: error)): \(error)"))
        }
    }
}
