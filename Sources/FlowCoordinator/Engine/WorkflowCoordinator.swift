import FlowCore
import FlowObservability
import FlowRuntime
import FlowTransport
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Tracing

/// The workflow coordinator actor: starts workflows from commands, sends their activity
/// requests to the work queues, records every reply, and drives each workflow forward.
///
/// **Durability.** Every fact is committed to the ``WorkflowStore`` before the coordinator
/// acts on it: a step is recorded before its request is sent, a reply is recorded before
/// it is acknowledged, a start is recorded before the command is acknowledged. After a
/// crash the coordinator runs every unfinished workflow again from the top; finished steps
/// return their recorded output at once, replies that arrived meanwhile wait in the
/// durable reply queue, and a step whose reply is overdue is sent again under the same
/// message id, which the worker's idempotency absorbs.
///
/// **Shape.** This actor is the shell around ``CoordinatorStateMachine``, which decides;
/// the shell does the I/O the decisions call for. Commands, replies, steps, supervision
/// and schedules are in their own files. Every task it runs is a child of ``run()``:
/// workflows, consumers and the supervision loop. Time comes from the injected clock.
///
/// A `Service`: on graceful shutdown it stops consuming, suspends its workflows where they
/// stand (they resume on the next start) and returns.
public actor WorkflowCoordinator: Service {
    public nonisolated let configuration: CoordinatorConfiguration
    public nonisolated let statistics: CoordinatorStatistics
    let registry: WorkflowRegistry
    let transport: any MessageTransport
    let store: any WorkflowStore
    let clock: any WallClock
    let logger: Logger

    var machine: CoordinatorStateMachine
    /// The workflows running here, by id: their code and their driver's inbox.
    var runs: [String: RunHandle] = [:]
    /// The journal of each workflow running here, as its driver last appended to it
    /// (`WorkflowCoordinator+Journal.swift`).
    var journals: [String: WorkflowJournal] = [:]
    /// Events drivers applied to the journals they hold, to write with their next flush.
    var staged: [String: Staged] = [:]
    /// The steps running workflows wait on, by message id.
    var stepOwners: [String: StepOwner] = [:]
    /// Workflows for `run()` to launch as its children.
    private let launches: AsyncStream<Launch>.Continuation
    private let launchRequests: AsyncStream<Launch>
    /// The spans of workflows started here and not yet launched, by id.
    var startedSpans: [String: any Span] = [:]
    /// Resets waiting for the run they replace to stop here (`WorkflowCoordinator+Runs.swift`).
    var pendingResets: [String: PendingReset] = [:]
    /// The journal of the run before each workflow's current run, read once, for the ids of
    /// the signals and updates it took (``earlierRun(of:run:)``).
    var earlierRuns: [String: (run: Int, journal: WorkflowJournal)] = [:]
    /// The span of each step waiting for its reply, by message id: a re-send from the
    /// supervision loop carries it, and says so on it.
    var stepSpans: [String: any Span] = [:]
    /// A finished workflow's result could not be sent (the broker refused it, or the
    /// connection was down): the supervision loop sends the pending results again.
    var resultsPending = false
    /// When the parked-workflow gauges are next counted.
    var parkedGaugesDue = Date.distantPast
    static let parkedGaugeInterval: TimeInterval = 10

    struct Launch: Sendable {
        var record: WorkflowRecord
        var resumed: Bool
        /// The facts for its driver, from the moment it was launched.
        var inputs: AsyncStream<RunInput>
        /// Its journal, when the coordinator just wrote all of it (a new workflow): the run
        /// need not read it back.
        var journal: WorkflowJournal?
    }

    public init(
        configuration: CoordinatorConfiguration, registry: WorkflowRegistry, transport: any MessageTransport, store: any WorkflowStore,
        clock: any WallClock = SystemWallClock(), metrics: FlowMetrics = FlowMetrics(), logger: Logger
    ) {
        self.configuration = configuration
        self.statistics = CoordinatorStatistics(metrics: metrics, workflows: registry.names)
        self.registry = registry
        self.transport = transport
        self.store = store
        self.clock = clock
        var logger = logger
        logger[metadataKey: "coordinator.id"] = "\(configuration.coordinatorID)"
        self.logger = logger
        machine = CoordinatorStateMachine(replyGrace: configuration.replyGrace, relaunchBackoff: configuration.relaunchBackoff)
        (launchRequests, launches) = AsyncStream<Launch>.makeStream()
    }

    var now: Date { clock.now.date }

    // MARK: Service

    public func run() async throws {
        let names = configuration.names
        try await transport.declare(names.topology)
        try await deliverPendingResults()
        var resumed = 0
        for workflow in try await store.unfinishedWorkflows() {
            statistics.record(.workflowResumed)
            launch(workflow, resumed: true)
            resumed += 1
        }
        let replies = try await transport.consume(queue: names.coordinatorReplyQueue, prefetch: configuration.prefetch)
        let commands = try await transport.consume(queue: configuration.commandQueue, prefetch: Self.commandPrefetch)
        statistics.setConsuming(true)
        logger.info("coordinator started", metadata: ["workflows": "\(registry.names.joined(separator: ","))", "resumed": "\(resumed)"])

        let launchRequests = self.launchRequests
        let failure: (any Error)? = await withTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                // Workflows run as children of their own group, so ending the consumers and
                // the supervision loop does not cut them off mid-record.
                await withDiscardingTaskGroup { workflows in
                    for await launch in launchRequests {
                        workflows.addTask { await self.drive(launch) }
                    }
                }
                return nil
            }
            group.addTask {
                do {
                    // Replies are handled side by side (the prefetch bounds how many); the
                    // store serialises what must be serial.
                    try await withThrowingDiscardingTaskGroup { replyGroup in
                        for try await delivery in replies.cancelOnGracefulShutdown() {
                            replyGroup.addTask { await self.handleReply(delivery) }
                        }
                    }
                    return nil
                } catch { return error }
            }
            group.addTask {
                do {
                    // The commands for one workflow (or one schedule) are carried out in
                    // the order they came, in its lane; lanes run side by side, so starts of
                    // different workflows share commits. Queries only read, so each runs in
                    // a task of its own. The prefetch bounds how many are in hand.
                    try await withThrowingDiscardingTaskGroup { tasks in
                        let lanes = (0..<Self.commandLanes).map { _ in AsyncStream<AMQPDelivery>.makeStream() }
                        defer { for lane in lanes { lane.continuation.finish() } }
                        for lane in lanes {
                            tasks.addTask { for await delivery in lane.stream { await self.handleCommand(delivery) } }
                        }
                        for try await delivery in commands.cancelOnGracefulShutdown() {
                            if let query = WorkflowQuery.Kind(rawValue: Self.commandType(of: delivery)) {
                                tasks.addTask { await self.handleQuery(query, delivery) }
                            } else {
                                lanes[Self.lane(of: delivery)].continuation.yield(delivery)
                            }
                        }
                    }
                    return nil
                } catch { return error }
            }
            group.addTask {
                await self.supervise()
                return nil
            }
            // A graceful shutdown ends the consumers and the supervision; a lost consumer
            // ends one. The first to end ends the coordinator.
            let first = await group.next() ?? nil
            statistics.setConsuming(false)
            await replies.stop()
            await commands.stop()
            self.suspendAll()
            group.cancelAll()
            await group.waitForAll()
            return first
        }
        replies.cancel()
        commands.cancel()
        logger.info("coordinator stopped")
        if let failure {
            logger.error("the coordinator's consumer stopped", metadata: ["error": "\(failure)"])
            throw failure
        }
    }

    /// Stops every workflow where it stands; its history is intact and it resumes on the
    /// next start.
    private func suspendAll() {
        machine.shutDown()
        launches.finish()
        // Each driver's inbox ends: the driver stops its workflow where it stands.
        for handle in runs.values { handle.inputs.finish() }
    }

    // MARK: Starting and cancelling workflows

    /// Starts a workflow, or joins the one of the same id (which does not run again).
    /// Returns the workflow as it stands. The workflow's span is a child of `trace`: the
    /// start command's sender's, when it sent one. `parent`: the workflow that starts this
    /// one as its child (``startChild(_:of:trace:)``).
    @discardableResult
    public func start(
        workflow name: String, id: String, input: JSONText, recipient: ResultRecipient?, trace: ServiceContext = .topLevel, parent: ParentLink? = nil
    ) async throws -> WorkflowRecord {
        guard registry.entry(named: name) != nil else {
            let known = registry.names.joined(separator: ", ")
            throw ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow named '\(name)' runs here (this coordinator runs: \(known.isEmpty ? "none" : known))")
        }
        let span = Self.workflowSpan(name: name, id: id, parent: trace)
        // A span that is never ended (the id was taken, the store failed) is never exported.
        let request = WorkflowStart(id: id, name: name, input: input, recipient: recipient, traceContext: MessageTracing.storedForm(of: span.context), parent: parent)
        let at = now
        switch try await store.create(request, epoch: configuration.epoch, at: at) {
        case .created(let record):
            statistics.workflowStarted(name: name)
            startedSpans[id] = span
            let started = JournalEntry(sequence: 1, epoch: configuration.epoch, recordedAt: at, event: .workflowStarted(name: name, input: input))
            launch(record, resumed: false, journal: try? WorkflowJournal([started]))
            return record
        case .existing(let record) where parent != nil && record.parent == parent:
            // A parent's resumed run asking for the child it started before.
            return record
        case .existing(let record):
            statistics.record(.duplicateStart)
            logger.info("workflow id already used; not starting it again", metadata: ["workflow.id": "\(id)", "workflow.status": "\(record.status.rawValue)"])
            if record.status.isFinished, let recipient {
                try await deliverResult(record, to: [recipient])
            }
            return record
        }
    }

    /// Cancels a workflow. Returns it, or nil when there is none.
    ///
    /// A cancel is recorded, then the code's tasks are cancelled: its waits throw
    /// `CancellationError`, the activities it waited on are asked to stop, and only code in
    /// ``WorkflowContext/shielded(_:)`` issues commands, to clean up; the workflow ends
    /// `cancelled`. `terminate` ends it at once instead, with no cleanup: a workflow running
    /// here is stopped where it stands, one that does not is recorded cancelled.
    @discardableResult
    public func cancel(workflowID: String, reason: String, terminate: Bool = false) async throws -> WorkflowRecord? {
        // A workflow running here: its driver records the request and cancels its code.
        if let handle = runs[workflowID] {
            let handled: Bool = try await withCheckedThrowingContinuation { done in
                if case .terminated = handle.inputs.yield(.cancel(reason: reason, terminate: terminate, done: done)) { done.resume(returning: false) }
            }
            if handled { return try await store.workflow(id: workflowID) }
        }
        if terminate, let record = try await store.workflow(id: workflowID), !record.status.isFinished {
            // Ended here and now: its result goes out, its open steps are asked to stop,
            // and its children and parent hear of it.
            let journal = try WorkflowJournal(try await store.journal(workflowID: workflowID))
            let failure = ActivityFailure.cancelled(reason)
            if let ended = try await finish(record, status: .cancelled, output: nil, error: failure, steps: 0, journal: journal) {
                let open = journal.commands.compactMap { command -> (messageID: String, queue: String)? in
                    guard case .activity(let scheduled, .waiting) = command else { return nil }
                    return ("\(workflowID)/\(scheduled.stepKey)", scheduled.queue)
                }
                await cancelSteps(open, of: workflowID, status: .cancelled)
                await closeFamily(of: ended.record, ended: ended.journal)
            }
            return try await store.workflow(id: workflowID)
        }
        // One that does not run here (parked for its code, or waiting for a relaunch): the
        // request is recorded, and its next run ends cancelled.
        let recorded = try await amend(workflowID) { journal in
            (journal.cancelRequested || journal.ending != nil ? [] : [WorkflowEvent.cancelRequested(reason: reason)], ())
        }
        guard recorded != nil else { return nil }
        return try await store.workflow(id: workflowID)
    }

    func launch(_ record: WorkflowRecord, resumed: Bool, journal: WorkflowJournal? = nil) {
        guard registry.entry(named: record.name) != nil else {
            // A workflow recorded by a build that had it; this build cannot run it.
            logger.error("a recorded workflow is not registered in this build; leaving it as it is", metadata: ["workflow.id": "\(record.id)", "workflow.name": "\(record.name)"])
            return
        }
        guard machine.launch(record.id) else { return }
        statistics.setRunning(machine.running.count)
        // The inbox exists from now on, so every outcome of this workflow goes to its
        // driver, which applies it after the replay, never beside it.
        let (inputs, inbox) = AsyncStream<RunInput>.makeStream()
        runs[record.id] = RunHandle(inputs: inbox)
        if record.cancelRequested { inbox.yield(.cancel(reason: nil, done: nil)) }
        launches.yield(Launch(record: record, resumed: resumed, inputs: inputs, journal: journal))
    }

    /// Launches again the workflows suspended for a failure whose time has come.
    func relaunchDue() async {
        for workflowID in machine.dueRelaunches(at: now) {
            guard let record = try? await store.workflow(id: workflowID), !record.status.isFinished else { continue }
            launch(record, resumed: true)
        }
    }

    /// Runs one workflow to its end, or until it is suspended or cancelled, and records what
    /// ended it.
    private func drive(_ launch: Launch) async {
        let record = launch.record
        let entry = registry.entry(named: record.name)!
        let span: any Span
        if let started = startedSpans.removeValue(forKey: record.id) {
            span = started
        } else {
            // Resumed (after a restart, or a failure to record): a new span in the trace the
            // workflow began, under the span it began with.
            span = Self.workflowSpan(name: record.name, id: record.id, parent: MessageTracing.context(storedForm: record.traceContext))
            span.addEvent(SpanEvent(name: "resumed", attributes: ["flow.coordinator.id": .string(configuration.coordinatorID)]))
        }
        defer { span.end() }
        var logger = self.logger
        logger[metadataKey: "workflow.id"] = "\(record.id)"
        if launch.resumed {
            logger.info("resuming workflow")
            try? await store.note(.resumed(workflowID: record.id, by: configuration.coordinatorID), at: now)
            if let orphan = await orphanReason(of: record) {
                logger.info("the workflow's parent ended before it; applying the parent-close policy", metadata: ["reason": "\(orphan.reason)"])
                runs[record.id]?.inputs.yield(.cancel(reason: orphan.reason, terminate: orphan.terminate, done: nil))
            }
        } else {
            logger.info("workflow started")
        }
        let (end, steps, journal, inFlight, unreceived) = await runWorkflow(record, entry: entry, inputs: launch.inputs, journal: launch.journal, span: span)
        // The coordinator's own task was cancelled (not shut down gracefully): the code's
        // waits threw `CancellationError` for that, not for a cancel of the workflow, which
        // must stay where it stands rather than be recorded as cancelled.
        if Task.isCancelled { machine.shutDown() }
        let ending = machine.ended(record.id, end ?? .threw(CancellationError()), at: now, random: Double.random(in: 0..<1))
        statistics.setRunning(machine.running.count)
        switch ending {
        case .suspended:
            span.addEvent("suspended")
        case .relaunch(let at):
            span.addEvent(SpanEvent(name: "suspended for a relaunch", attributes: ["error.message": .string("\(end.map { "\($0)" } ?? "")")]))
            logger.error(
                "workflow suspended: the coordinator could not record or send a step; trying it again",
                metadata: ["at": "\(at)", "error": "\(end.map { "\($0)" } ?? "")"]
            )
        case .diverged(let divergence):
            span.setStatus(SpanStatus(code: .error, message: divergence.description))
            logger.error("workflow parked: its code does not replay its journal", metadata: ["error": "\(divergence)"])
            statistics.record(.stepParked)
            do {
                let reason = divergence.description
                _ = try await amend(record.id, from: journal) { journal in
                    (journal.divergence == reason || journal.ending != nil ? [] : [WorkflowEvent.replayDiverged(reason: reason)], ())
                }
            } catch {
                let at = machine.relaunchLater(record.id, at: now, random: Double.random(in: 0..<1))
                logger.error("could not park a workflow whose code does not replay; trying it again", metadata: ["error": "\(error)", "at": "\(at)"])
            }
        case .superseded:
            span.addEvent("reset")
            await supersededRunStopped(record, journal: journal)
        case .continued(let input):
            span.attributes[FlowSpanAttribute.outcome] = WorkflowStatus.continuedAsNew.rawValue
            await cancelSteps(inFlight, of: record.id, status: .continuedAsNew)
            do {
                try await continueAsNew(record, input: input, ended: journal, unreceived: unreceived, steps: steps)
            } catch {
                // Its replay continues as new again, which is recorded then.
                let at = machine.relaunchLater(record.id, at: now, random: Double.random(in: 0..<1))
                logger.error("could not record a continue-as-new; running the workflow again", metadata: ["error": "\(error)", "at": "\(at)"])
            }
        case .finished(let status, let output, let error):
            span.attributes[FlowSpanAttribute.outcome] = status.rawValue
            if let error {
                span.attributes[FlowSpanAttribute.errorType] = error.type
                span.setStatus(SpanStatus(code: .error, message: error.message))
            }
            await cancelSteps(inFlight, of: record.id, status: status)
            do {
                let ended = try await finish(record, status: status, output: output, error: error, steps: steps, journal: journal)
                if let ended { await closeFamily(of: ended.record, ended: ended.journal) }
            } catch {
                // Its replay reaches the same end, which is recorded then.
                let at = machine.relaunchLater(record.id, at: now, random: Double.random(in: 0..<1))
                logger.error("could not record the end of a workflow; running it again", metadata: ["error": "\(error)", "at": "\(at)"])
            }
        }
    }

    /// A workflow's span: one for each run of it in a coordinator, under `parent`.
    static func workflowSpan(name: String, id: String, parent: ServiceContext) -> any Span {
        let span = startSpan("workflow \(name)", context: parent, ofKind: .internal)
        span.attributes[FlowSpanAttribute.workflowID] = id
        span.attributes[FlowSpanAttribute.workflowName] = name
        return span
    }

    /// Records a workflow's end and sends its result. Returns the record and journal as they
    /// ended, nil when the end was recorded before.
    private func finish(
        _ record: WorkflowRecord, status: WorkflowStatus, output: JSONText?, error: ActivityFailure?, steps: Int, journal: WorkflowJournal?
    ) async throws -> (record: WorkflowRecord, journal: WorkflowJournal)? {
        let workflowID = record.id
        let failure = status == .completed ? nil : error ?? (status == .cancelled ? .cancelled("cancelled") : .nonRetryable(.unknown, "no error was recorded"))
        let ending: WorkflowEvent = switch status {
        case .completed: .workflowCompleted(output: output ?? .null)
        case .cancelled: .workflowCancelled(failure: failure!)
        case .failed, .running, .parked, .continuedAsNew, .reset: .workflowFailed(failure: failure!)
        }
        // A workflow ends once: an end found recorded was told to its recipients then.
        let at = now
        let ended = try await amend(workflowID, from: journal) { journal in journal.ending == nil ? ([ending], true) : ([], false) }
        guard let ended, ended.0 else { return nil }
        // What the result says is what was just recorded: no need to read it back.
        var record = record
        record.status = status
        record.output = status == .completed ? output ?? .null : nil
        record.error = failure
        record.parkedReason = nil
        record.updatedAt = at
        record.finishedAt = at
        let recipients = try await store.recipients(workflowID: workflowID)
        earlierRuns[workflowID] = nil
        statistics.workflowEnded(name: record.name, status: status, after: at.timeIntervalSince(record.startedAt), steps: steps)
        logger.info("workflow \(status.rawValue)", metadata: ["workflow.id": "\(workflowID)", "error": "\(error.map { "\($0)" } ?? "")"])
        do {
            try await deliverResult(record, to: recipients)
        } catch {
            // The end is recorded, and so are the recipients not yet told: the supervision
            // loop tells them (and a restart would).
            resultsPending = true
            logger.warning("could not send a workflow's result; sending it again at the next supervision check", metadata: ["workflow.id": "\(workflowID)", "error": "\(error)"])
        }
        return (record, ended.1)
    }
}
