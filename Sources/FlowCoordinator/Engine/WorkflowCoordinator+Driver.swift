import FlowCore
import FlowObservability
import Foundation
import Logging
import Tracing

/// How a workflow runs here: its journal is replayed into its code, then each new fact is
/// recorded and applied in turn.
///
/// One driver per running workflow is the only thing that resumes that workflow's code,
/// and it resumes it only right after applying the fact that resumes it to the journal it
/// holds, one fact at a time. So the code sees facts in journal order, live as on a replay,
/// and the commands it issues in answer land at the same positions both times. A step's
/// outcome or a timer's firing is written with those commands, in one append, before any
/// of them takes effect (``stage(_:to:)``).
extension WorkflowCoordinator {
    /// A workflow running here: where its driver takes new facts.
    struct RunHandle: Sendable {
        var inputs: AsyncStream<RunInput>.Continuation
    }

    /// A fact for a running workflow's driver.
    enum RunInput: Sendable {
        /// A step's final outcome; `done` receives what recording it did.
        case outcome(messageID: String, StepResult, done: CheckedContinuation<StepChange?, any Error>)
        case timerFired(position: Int, key: String)
        /// A cancel request: `reason` to record (nil when the journal has it), and `done`
        /// told whether the driver took it. `terminate`: the code is stopped where it
        /// stands, with no chance to clean up.
        case cancel(reason: String?, terminate: Bool = false, done: CheckedContinuation<Bool, any Error>?)
        /// A signal to record and hand to the code; `done` receives what came of it (nil:
        /// the run stopped first, record it without it).
        case signal(id: String, name: String, input: JSONText, done: CheckedContinuation<SignalOutcome?, any Error>)
        /// An update to validate, record and apply (nil: the run stopped first).
        case update(id: String, name: String, input: JSONText, done: CheckedContinuation<UpdateOutcome?, any Error>)
        /// A query to answer from the code's state (nil: the run stopped first, replay it).
        case query(name: String, done: CheckedContinuation<JSONText?, any Error>)
        /// An operator's pause (`reason`) or unpause (nil); `done` is told whether it
        /// changed anything.
        case pause(reason: String?, done: CheckedContinuation<Bool?, any Error>)
        /// A child this workflow started ended (or could not start).
        case childEnded(position: Int, ChildOutcome)
        /// An operator's pause, unpause or reset of the activity at `position`.
        case activity(position: Int, ActivityControl, done: CheckedContinuation<ActivityControlOutcome?, any Error>)
        /// Work arrived on the run's executor outside a drain.
        case wake
    }

    /// A step's final outcome, from a worker's reply or the coordinator's supervision.
    enum StepResult: Sendable {
        case completed(attempt: Int, output: JSONText)
        case failed(attempt: Int, failure: ActivityFailure)
        case timedOut(ActivityFailure)
    }

    /// A step a running workflow waits on.
    struct StepOwner: Sendable {
        var workflowID: String
        var position: Int
        var call: ActivityCall
        var scheduledAt: Date
        /// What a step sent again after an unpause goes on from.
        var carried: CarriedAttempt?
    }

    /// Runs a workflow's code to its end or until it stops here, and says how it ended.
    /// Also says how many activities the code called, and gives the journal as the run
    /// left it.
    func runWorkflow(
        _ record: WorkflowRecord, entry: WorkflowRegistry.Entry, inputs: AsyncStream<RunInput>, journal known: WorkflowJournal?, span workflowSpan: any Span
    ) async -> (CoordinatorStateMachine.RunEnd?, steps: Int, journal: WorkflowJournal?, inFlight: [(messageID: String, queue: String)], unreceived: Set<String>) {
        let input = runs[record.id]!.inputs
        defer {
            runs[record.id] = nil
            journals[record.id] = nil
            staged[record.id] = nil
        }
        let journal: WorkflowJournal
        do {
            if let known { journal = known } else { journal = try WorkflowJournal(try await store.journal(workflowID: record.id)) }
        } catch {
            // Replies may wait in the inbox already, their handlers awaiting an answer (a
            // coordinator cancelled as it starts cannot read the journal): they are
            // answered, or those handlers, and the coordinator's stop, would wait for ever.
            runs[record.id] = nil
            await finishInbox(input, inputs, of: record.id)
            if let error = error as? JournalError {
                return (.threw(WorkflowNondeterminism(workflowID: record.id, position: -1, recorded: "a journal that does not hold together (\(error))", requested: "a journal it can replay")), 0, nil, [], [])
            }
            return (.threw(CoordinatorUnavailable(message: "cannot read the journal of \(record.id): \(error)")), 0, nil, [], [])
        }
        journals[record.id] = journal
        let run = WorkflowRun(workflowID: record.id, workflowName: record.name, runNumber: record.run, recorded: journal.commands) { input.yield(.wake) }
        let context = WorkflowContext(run: run, startedAt: record.startedAt, clock: clock, logger: logger)
        let workflowTrace = workflowSpan.context

        let end: CoordinatorStateMachine.RunEnd? = await withTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: run.executor) {
                // The workflow's steps are children of its span.
                await ServiceContext.withValue(workflowTrace) {
                    do { run.finish(.returned(try await entry.run(record.input, context))) } catch { run.finish(.threw(error)) }
                }
            }
            var end = replay(journal, into: run, cancel: { group.cancelAll() })
            if end == nil, journal.divergence != nil {
                // Parked because older code did not replay; this code does.
                do {
                    try await append([.replayRecovered], to: record.id)
                    logger.info("a workflow parked for nondeterminism replays with this code; running again", metadata: ["workflow.id": "\(record.id)"])
                } catch {
                    end = .threw(CoordinatorUnavailable(message: "cannot unpark \(record.id): \(error)"))
                }
            }
            if end == nil {
                end = await live(run, journal: journal, inputs: inputs, trace: workflowTrace, group: &group)
            }
            // Whatever ended the run, its code's tasks end too: nothing more is issued, waits
            // are cancelled, and the tasks run to their end on this executor.
            run.stop()
            group.cancelAll()
            run.executor.drain()
            return end
        }
        let left = journals[record.id]
        runs[record.id] = nil
        journals[record.id] = nil
        staged[record.id] = nil
        await finishInbox(input, inputs, of: record.id)
        var inFlight: [(messageID: String, queue: String)] = []
        for (messageID, owner) in stepOwners where owner.workflowID == record.id {
            stepOwners[messageID] = nil
            stepSpans.removeValue(forKey: messageID)?.end()
            inFlight.append((messageID, configuration.names.queue(owner.call.queue)))
        }
        return (end, run.activityCount, left, inFlight, Set(run.unreceivedSignalIDs))
    }

    /// Closes a run's inbox and answers what is still in it: outcomes and cancels that came
    /// after the run stopped are recorded without it (a relaunch replays them), and every
    /// input that carries a continuation is answered, since its sender waits on it.
    private func finishInbox(_ input: AsyncStream<RunInput>.Continuation, _ inputs: AsyncStream<RunInput>, of workflowID: String) async {
        input.finish()
        for await late in inputs {
            switch late {
            case .outcome(let messageID, let result, let done):
                do { done.resume(returning: try await recordOutcome(result, messageID: messageID, run: nil)) } catch { done.resume(throwing: error) }
            case .cancel(_, _, let done):
                done?.resume(returning: false)
            case .signal(_, _, _, let done):
                done.resume(returning: nil)
            case .query(_, let done):
                done.resume(returning: nil)
            case .update(_, _, _, let done):
                done.resume(returning: nil)
            case .pause(_, let done):
                done.resume(returning: nil)
            case .activity(_, _, let done):
                done.resume(returning: nil)
            case .childEnded(let position, let outcome):
                // Recorded without the run; if that fails, the parent's relaunch asks the child again.
                try? await recordChildEnd(outcome, at: position, of: workflowID)
            case .timerFired, .wake:
                continue
            }
        }
    }

    // MARK: Replay

    /// Runs the code against its journal (``WorkflowRun/replay(_:cancel:)``). Returns how
    /// the run ended when it ended there (it diverged), nil when it goes on live.
    private func replay(_ journal: WorkflowJournal, into run: WorkflowRun, cancel: () -> Void) -> CoordinatorStateMachine.RunEnd? {
        let replayed = run.replay(journal, cancel: cancel)
        for _ in 0..<replayed { statistics.record(.stepReplayed) }
        if let divergence = run.divergence { return .threw(divergence) }
        return nil
    }

    // MARK: Live

    /// Takes up the commands the journal left waiting, then records and applies new facts
    /// until the code ends or the run stops here.
    private func live(
        _ run: WorkflowRun, journal: WorkflowJournal, inputs: AsyncStream<RunInput>, trace: ServiceContext, group: inout TaskGroup<Void>
    ) async -> CoordinatorStateMachine.RunEnd? {
        do {
            if run.ending == nil { try await resumeRecordedCommands(run, journal: journal, trace: trace, group: &group) }
            var pending = inputs.makeAsyncIterator()
            // Replies whose outcome is staged: acknowledged once it is written.
            var owed: [(CheckedContinuation<StepChange?, any Error>, StepChange)] = []
            while true {
                do {
                    try await recordNewCommands(run, trace: trace, group: &group) {
                        for (done, change) in owed { done.resume(returning: change) }
                        owed = []
                    }
                } catch {
                    for (done, _) in owed { done.resume(throwing: error) }
                    throw error
                }
                if let lost = journalLost(run.workflowID) { return .threw(lost) }
                try await cancelAbandonedSteps(of: run)
                if let divergence = run.divergence { return .threw(divergence) }
                if let ending = run.ending { return ending }
                guard let input = await pending.next() else { return nil }
                switch input {
                case .outcome(let messageID, let result, let done):
                    do {
                        let change = try await recordOutcome(result, messageID: messageID, run: run)
                        if staged[run.workflowID] == nil { done.resume(returning: change) } else { owed.append((done, change)) }
                    } catch {
                        done.resume(throwing: error)
                    }
                case .timerFired(let position, _):
                    // Written with the commands the code issues after it; if that write
                    // fails the run ends, and its relaunch arms the timer again.
                    if heldJournal(of: run).answering(.timerFired(position: position)) == .record {
                        try stage([.timerFired(position: position)], to: run.workflowID)
                    }
                    run.resolve(position, .success(.null))
                case .cancel(let reason, let terminate, let done):
                    do {
                        let journal = heldJournal(of: run)
                        if let reason, !journal.cancelRequested, journal.ending == nil {
                            try await append([.cancelRequested(reason: reason)], to: run.workflowID)
                        }
                        done?.resume(returning: true)
                    } catch {
                        done?.resume(throwing: error)
                        continue
                    }
                    if machine.requestCancel(run.workflowID) {
                        // The code's tasks are cancelled: its waits throw, and only its
                        // shielded scopes issue commands, to clean up. A termination
                        // stops it outright.
                        if terminate { run.stop() }
                        group.cancelAll()
                    }
                case .signal(let id, let name, let input, let done):
                    do {
                        var outcome = Self.signalOutcome(id: id, in: heldJournal(of: run))
                        if outcome == .recorded, try await earlierRun(of: run.workflowID, run: run.runNumber)?.signalIDs.contains(id) == true { outcome = .duplicate }
                        if outcome == .recorded {
                            try await append([.signalReceived(id: id, name: name, input: input)], to: run.workflowID)
                            run.deliverSignal(name: name, input: input, id: id)
                        }
                        done.resume(returning: outcome)
                    } catch {
                        done.resume(throwing: error)
                    }
                case .update(let id, let name, let input, let done):
                    do {
                        done.resume(returning: try await applyUpdate(id: id, name: name, input: input, to: run))
                    } catch {
                        done.resume(throwing: error)
                    }
                case .pause(let reason, let done):
                    do {
                        let events = Self.pauseEvents(reason, in: heldJournal(of: run))
                        if !events.isEmpty { try await append(events, to: run.workflowID) }
                        done.resume(returning: !events.isEmpty)
                    } catch {
                        done.resume(throwing: error)
                    }
                case .childEnded(let position, let outcome):
                    // Written with the commands the code issues after it.
                    let event = outcome.event(at: position)
                    if heldJournal(of: run).answering(event) == .record {
                        let child = heldJournal(of: run).commands[safe: position]
                        try stage([event], to: run.workflowID)
                        run.resolve(position, outcome.result(for: child))
                    }
                case .activity(let position, let control, let done):
                    do {
                        done.resume(returning: try await controlActivity(position, control, of: run, trace: trace))
                    } catch {
                        done.resume(throwing: error)
                    }
                case .query(let name, let done):
                    // Between two facts: the code is suspended, its state whole.
                    done.resume(with: Result { try run.answerQuery(name) })
                case .wake:
                    break
                }
                run.settle()
            }
        } catch {
            return .threw(error)
        }
    }

    /// After a replay: sends the recorded steps that were never sent, watches the sent ones,
    /// and arms the timers that have not fired.
    private func resumeRecordedCommands(_ run: WorkflowRun, journal: WorkflowJournal, trace: ServiceContext, group: inout TaskGroup<Void>) async throws {
        for (position, command) in journal.commands.enumerated() {
            switch command {
            case .activity(let scheduled, .waiting), .activity(let scheduled, .parked):
                guard case .activity(let call)? = run.request(at: position) else { continue }
                let messageID = "\(run.workflowID)/\(scheduled.stepKey)"
                guard let step = try await store.step(messageID: messageID) else {
                    throw CoordinatorUnavailable(message: "the journal of \(run.workflowID) has step \(messageID), which the store lacks")
                }
                if journal.pausedActivities[position] != nil {
                    // Paused: not sent until unpaused; an attempt that completed before the
                    // pause reached it still answers the code.
                    stepOwners[messageID] = StepOwner(workflowID: run.workflowID, position: position, call: call, scheduledAt: step.scheduledAt)
                    continue
                }
                try await begin(step, position: position, call: call, trace: trace)
            case .timer(let key, let fireAt, fired: false):
                arm(timer: key, position: position, fireAt: fireAt, run: run, group: &group)
            case .child(let child, .waiting):
                // Started before (a start is idempotent on its id), or not yet if a crash
                // came between the command and the start; ended meanwhile, it says so.
                try await startChild(child, of: run.workflowID, trace: trace)
            default:
                continue
            }
        }
    }

    /// Records the commands the code issued since the last drain, in position order and
    /// in one append with the fact that led to them, calls `written` once that is durable,
    /// and acts on each command: a step is sent, a timer armed.
    private func recordNewCommands(_ run: WorkflowRun, trace: ServiceContext, group: inout TaskGroup<Void>, written: () -> Void) async throws {
        // Paused: the commands the code issues wait in the run until it is unpaused.
        let commands = heldJournal(of: run).pausedBecause == nil ? run.takeNewCommands() : []
        guard let first = commands.first, run.divergence == nil else {
            try await flush(run.workflowID)
            written()
            return
        }
        let at = now
        let events: [WorkflowEvent] = commands.map { command in
            let position = command.position
            switch command.request {
            case .activity(let call):
                return .activityScheduled(
                    WorkflowEvent.ScheduledActivity(
                        position: position, activity: call.activity, queue: configuration.names.queue(call.queue), input: call.input, options: call.options,
                        stepKey: run.stepKey(activity: call.activity, position: position)
                    )
                )
            case .timer(let duration):
                return .timerStarted(position: position, key: "sleep@\(position)", fireAt: at.addingTimeInterval(duration.seconds))
            case .marker(let name):
                return .markerRecorded(position: position, name: name, value: command.value ?? .null)
            case .child(let call):
                return .childScheduled(
                    WorkflowEvent.ScheduledChild(position: position, workflow: call.workflow, workflowID: call.workflowID, input: call.input, parentClosePolicy: call.parentClosePolicy)
                )
            }
        }
        do {
            try await append(events, to: run.workflowID)
        } catch {
            throw CoordinatorUnavailable(message: "cannot record \(events.count) commands of \(run.workflowID) from position \(first.position): \(error)")
        }
        written()
        for (command, event) in zip(commands, events) {
            switch (command.request, event) {
            case (.activity(let call), .activityScheduled(let scheduled)):
                let step = StepRecord(
                    messageID: "\(run.workflowID)/\(scheduled.stepKey)", workflowID: run.workflowID, stepKey: scheduled.stepKey, activity: call.activity,
                    queue: scheduled.queue, input: call.input, options: call.options, status: .scheduled, sends: 0, scheduledAt: at, attempt: 0
                )
                try await begin(step, position: scheduled.position, call: call, trace: trace)
            case (_, .timerStarted(let position, let key, let fireAt)):
                arm(timer: key, position: position, fireAt: fireAt, run: run, group: &group)
            case (_, .childScheduled(let child)):
                try await startChild(child, of: run.workflowID, trace: trace)
            default:
                continue
            }
        }
    }

    /// The journal of a workflow running here.
    private func heldJournal(of run: WorkflowRun) -> WorkflowJournal {
        journals[run.workflowID] ?? WorkflowJournal()
    }

    /// Watches a step its workflow now waits on, and sends it unless it was sent before or
    /// is parked (then an operator's replay of its dead letter answers it).
    func begin(_ step: StepRecord, position: Int, call: ActivityCall, trace: ServiceContext) async throws {
        let messageID = step.messageID
        // A step resumed after a pause has attempts behind it (under an old message id),
        // which its new message carries on from.
        let carried = step.sends == 0 && step.attempt > 0 ? CarriedAttempt(attempt: step.attempt + 1, heartbeat: step.heartbeat) : nil
        stepOwners[messageID] = StepOwner(workflowID: step.workflowID, position: position, call: call, scheduledAt: step.scheduledAt, carried: carried)
        // The step's span is the parent of every worker attempt: the retries through the
        // delay tiers, re-sends, and a replay from the dead-letter queue.
        let span = startSpan("send \(call.activity)", context: trace, ofKind: .producer)
        span.setMessagingAttributes(operation: "send", destination: step.queue, messageID: messageID)
        span.attributes[FlowSpanAttribute.activity] = call.activity
        span.attributes[FlowSpanAttribute.workflowID] = step.workflowID
        span.attributes[FlowSpanAttribute.stepKey] = step.stepKey
        stepSpans[messageID] = span
        let sentAt = step.status == .parked ? nil : step.sentAt
        machine.awaitStep(messageID, .init(workflowID: step.workflowID, call: call, sentAt: sentAt, lastHeardAt: step.lastHeardAt, sends: step.sends))
        if step.sentAt == nil {
            try await send(messageID: messageID, workflowID: step.workflowID, call: call, resentBecause: nil)
        } else {
            span.addEvent(SpanEvent(name: step.status == .parked ? "waiting for a replay of the parked step" : "waiting for the reply to an earlier send", attributes: [
                "flow.step.sends": .int64(Int64(step.sends)),
            ]))
        }
    }

    /// A timer task that hands its fire to the run's driver at `fireAt` on the coordinator's clock.
    private func arm(timer key: String, position: Int, fireAt: Date, run: WorkflowRun, group: inout TaskGroup<Void>) {
        guard let input = runs[run.workflowID]?.inputs else { return }
        let clock = self.clock
        group.addTask {
            do {
                try await clock.sleep(until: WallInstant(fireAt), tolerance: nil)
                input.yield(.timerFired(position: position, key: key))
            } catch {}
        }
    }
}
