import FlowTransport
import FlowCore
import FlowRuntime
import Foundation
import Logging
import ServiceLifecycle

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
/// A `Service`: on graceful shutdown it stops consuming, suspends its workflows where they
/// stand (they resume on the next start) and returns.
public actor WorkflowCoordinator: Service {
    public nonisolated let configuration: CoordinatorConfiguration
    public nonisolated let statistics = CoordinatorStatistics()
    private let registry: WorkflowRegistry
    private let transport: any MessageTransport
    private let store: WorkflowStore
    private let logger: Logger

    /// The task of each workflow running in memory, by id.
    private var running: [String: Task<Void, Never>] = [:]
    /// Workflows asked to cancel while running here.
    private var cancelling: Set<String> = []
    /// Steps a workflow waits on, by message id.
    private var waiting: [String: CheckedContinuation<StepOutcome, any Error>] = [:]
    /// Outcomes that arrived before their workflow started waiting (a replay reaches the
    /// step after the reply came), by message id.
    private var arrived: [String: StepOutcome] = [:]
    /// What the supervisor needs to tell when a sent step is overdue, by message id.
    private var deadlines: [String: StepDeadline] = [:]
    private var shuttingDown = false

    enum StepOutcome: Sendable {
        case completed(JSONText)
        case failed(ActivityFailure)
        /// The request could not be sent; the workflow is suspended and tried again.
        case unavailable(String)
    }

    struct StepDeadline: Sendable {
        var workflowID: String
        var call: ActivityCall
        var sentAt: Date
        var lastHeardAt: Date?
        var sends: Int
    }

    public init(configuration: CoordinatorConfiguration, registry: WorkflowRegistry, transport: any MessageTransport, store: WorkflowStore, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.transport = transport
        self.store = store
        var logger = logger
        logger[metadataKey: "coordinator.id"] = "\(configuration.coordinatorID)"
        self.logger = logger
    }

    // MARK: Service

    public func run() async throws {
        let names = configuration.names
        try await transport.declare(names.topology)
        try await deliverPendingResults()
        for workflow in try await store.unfinishedWorkflows() {
            statistics.record(.workflowResumed)
            launch(workflow, resumed: true)
        }
        let replies = try await transport.consume(queue: names.coordinatorReplyQueue, prefetch: configuration.prefetch)
        let commands = try await transport.consume(queue: configuration.commandQueue, prefetch: 32)
        statistics.setConsuming(true)
        logger.info("coordinator started", metadata: ["workflows": "\(registry.names.joined(separator: ","))", "resumed": "\(running.count)"])

        let failure: (any Error)? = await withTaskGroup(of: (any Error)?.self) { group in
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
                    for try await delivery in commands.cancelOnGracefulShutdown() { await self.handleCommand(delivery) }
                    return nil
                } catch { return error }
            }
            group.addTask {
                while !Task.isCancelled, !Task.isShuttingDownGracefully {
                    await self.superviseSteps()
                    await self.runDueSchedules()
                    try? await Task.sleep(for: self.configuration.supervisionInterval)
                }
                return nil
            }
            // The first to end (a graceful shutdown ends all three; a lost consumer ends one)
            // ends the coordinator.
            let first = await group.next() ?? nil
            group.cancelAll()
            await group.waitForAll()
            return first
        }
        statistics.setConsuming(false)
        await replies.stop()
        await commands.stop()
        await suspendAll()
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
    private func suspendAll() async {
        shuttingDown = true
        let tasks = Array(running.values)
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    // MARK: Starting workflows

    /// Starts a workflow, or joins the one of the same id (which does not run again).
    /// Returns the workflow as it stands.
    @discardableResult
    public func start(workflow name: String, id: String, input: JSONText, recipient: ResultRecipient?) async throws -> WorkflowRecord {
        guard registry.entry(named: name) != nil else {
            let known = registry.names.joined(separator: ", ")
            throw ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow named '\(name)' runs here (this coordinator runs: \(known.isEmpty ? "none" : known))")
        }
        switch try await store.startWorkflow(id: id, name: name, input: input, recipient: recipient) {
        case .created(let record):
            statistics.record(.workflowStarted)
            launch(record, resumed: false)
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
    @discardableResult
    public func cancel(workflowID: String, reason: String) async throws -> WorkflowRecord? {
        guard let record = try await store.requestCancel(id: workflowID, reason: reason) else { return nil }
        if !record.status.isFinished, let task = running[workflowID] {
            cancelling.insert(workflowID)
            task.cancel()
        }
        return record
    }

    private func launch(_ record: WorkflowRecord, resumed: Bool) {
        guard running[record.id] == nil else { return }
        guard let entry = registry.entry(named: record.name) else {
            // A workflow recorded by a build that had it; this build cannot run it.
            logger.error("a recorded workflow is not registered in this build; leaving it as it is", metadata: ["workflow.id": "\(record.id)", "workflow.name": "\(record.name)"])
            return
        }
        let context = WorkflowContext(coordinator: self, workflowID: record.id, workflowName: record.name, startedAt: record.startedAt, logger: logger)
        running[record.id] = Task { await self.drive(record, entry: entry, context: context, resumed: resumed) }
        statistics.setRunning(running.count)
    }

    private func drive(_ record: WorkflowRecord, entry: WorkflowRegistry.Entry, context: WorkflowContext, resumed: Bool) async {
        if resumed {
            context.logger.info("resuming workflow")
            try? await store.appendHistory(workflowID: record.id, kind: .workflowResumed, detail: "by \(configuration.coordinatorID)")
        } else {
            context.logger.info("workflow started")
        }
        let ending: (WorkflowStatus, JSONText?, ActivityFailure?)?
        do {
            if record.cancelRequested { throw CancellationError() }
            let output = try await entry.run(record.input, context)
            ending = (.completed, output, nil)
        } catch {
            ending = classify(error, workflowID: record.id)
        }
        running[record.id] = nil
        statistics.setRunning(running.count)
        arrived = arrived.filter { !$0.key.hasPrefix(record.id + "/") }
        guard let (status, output, failure) = ending else { return }
        do {
            // Outside the workflow's task: a cancelled workflow must still record its end.
            try await Task { try await self.finish(record.id, status: status, output: output, error: failure) }.value
        } catch {
            logger.error("could not record the end of a workflow; it runs again on the next start", metadata: ["workflow.id": "\(record.id)", "error": "\(error)"])
        }
    }

    /// How an error that ended `run` ends the workflow: nil when it must not end it (a
    /// shutdown, the store or broker failing), so it runs again later.
    private func classify(_ error: any Error, workflowID: String) -> (WorkflowStatus, JSONText?, ActivityFailure?)? {
        if cancelling.remove(workflowID) != nil {
            return (.cancelled, nil, .nonRetryable(.cancelled, "the workflow was cancelled"))
        }
        if shuttingDown { return nil }
        switch error {
        case let error as CoordinatorUnavailable:
            logger.error("workflow suspended: the coordinator could not record or send a step; retrying it shortly", metadata: ["workflow.id": "\(workflowID)", "error": "\(error)"])
            scheduleRelaunch(workflowID)
            return nil
        case let error as ActivityError:
            return (.failed, nil, ActivityFailure.nonRetryable(error.failure.kind, "\(error.activity) failed: \(error.failure.message)"))
        case let failure as ActivityFailure:
            return (.failed, nil, failure)
        case is CancellationError:
            return (.cancelled, nil, .nonRetryable(.cancelled, "the workflow was cancelled"))
        default:
            return (.failed, nil, .nonRetryable(.workflowError, "\(type(of: error)): \(error)"))
        }
    }

    private func scheduleRelaunch(_ workflowID: String) {
        Task {
            try? await Task.sleep(for: .seconds(5))
            await self.relaunch(workflowID)
        }
    }

    private func relaunch(_ workflowID: String) async {
        guard !shuttingDown, running[workflowID] == nil,
              let record = try? await store.workflow(id: workflowID), !record.status.isFinished
        else { return }
        launch(record, resumed: true)
    }

    private func finish(_ workflowID: String, status: WorkflowStatus, output: JSONText?, error: ActivityFailure?) async throws {
        guard let (record, recipients) = try await store.finishWorkflow(id: workflowID, status: status, output: output, error: error) else { return }
        switch status {
        case .completed: statistics.record(.workflowCompleted)
        case .cancelled: statistics.record(.workflowCancelled)
        default: statistics.record(.workflowFailed)
        }
        logger.info("workflow \(status.rawValue)", metadata: ["workflow.id": "\(workflowID)", "error": "\(error.map { "\($0)" } ?? "")"])
        do {
            try await deliverResult(record, to: recipients)
        } catch {
            // The end is recorded; recipients not yet told are told on the next start.
            logger.warning("could not send a workflow's result; it is sent on the next start", metadata: ["workflow.id": "\(workflowID)", "error": "\(error)"])
        }
    }

    /// Sends a finished workflow's result to its recipients, forgetting each once sent.
    private func deliverResult(_ record: WorkflowRecord, to recipients: [ResultRecipient]) async throws {
        let body = Array(try JSONEncoder().encode(record.result))
        for recipient in recipients {
            let properties = AMQPProperties(
                contentType: FlowProtocol.contentType, headers: [FlowProtocol.Header.workflowID: .string(record.id)], deliveryMode: 2,
                correlationID: recipient.correlationID, messageID: "\(record.id)#result", timestamp: UInt64(Date().timeIntervalSince1970),
                type: WorkflowResult.messageType, appID: "antifragileflow"
            )
            do {
                try await transport.publish(AMQPMessage(routingKey: recipient.replyTo, properties: properties, body: body))
            } catch let error as AMQPError where error.code == .unroutable {
                logger.warning("a workflow's reply queue does not exist; result not sent", metadata: ["workflow.id": "\(record.id)", "reply.to": "\(recipient.replyTo)"])
            }
            try await store.removeRecipient(workflowID: record.id, recipient)
        }
    }

    /// Tells a parked workflow's recipients that it waits, and what ends the wait. They
    /// stay recipients: the final result follows once it ends.
    private func announceParked(_ step: StepHead, failure: ActivityFailure) async throws {
        guard let record = try await store.workflow(id: step.workflowID) else { return }
        let advice = ActivityFailure.nonRetryable(
            failure.kind,
            "\(step.activity) failed for good: \(failure.message). Its message \(step.messageID) is in the dead-letter queue; fix the cause, then "
                + "`flow dlq replay --message-id \(step.messageID)` continues the workflow (or `flow workflow cancel \(step.workflowID)` ends it)"
        )
        let notice = WorkflowResult(status: .parked, workflow: record.name, workflowID: record.id, error: advice)
        for recipient in try await store.recipients(workflowID: record.id) {
            try await publishAnswer(notice, type: WorkflowResult.messageType, to: recipient)
        }
    }

    private func deliverPendingResults() async throws {
        for record in try await store.finishedWithRecipients() {
            try await deliverResult(record, to: try await store.recipients(workflowID: record.id))
        }
    }

    // MARK: Steps

    /// Runs one step of a workflow: its recorded outcome when it has one, otherwise sends
    /// the request (unless it was sent before) and waits for the outcome.
    func executeStep(workflowID: String, stepKey: String, call: ActivityCall, logger: Logger) async throws -> JSONText {
        let messageID = "\(workflowID)/\(stepKey)"
        let step: StepRecord
        do {
            step = try await store.scheduleStep(
                StepRecord(
                    messageID: messageID, workflowID: workflowID, stepKey: stepKey, activity: call.activity,
                    queue: configuration.names.queue(call.queue), input: call.input, options: call.options, status: .scheduled,
                    sends: 0, scheduledAt: Date(), sentAt: nil, lastHeardAt: nil, attempt: 0, result: nil, error: nil
                )
            )
        } catch {
            throw CoordinatorUnavailable(message: "cannot record step \(stepKey): \(error)")
        }
        switch step.status {
        case .completed:
            statistics.record(.stepReplayed)
            return step.result ?? JSONText.null
        case .failed:
            statistics.record(.stepReplayed)
            throw ActivityError(activity: call.activity, failure: step.error ?? .nonRetryable(.unknown, "no error recorded"))
        case .scheduled, .parked:
            break
        }
        if let sentAt = step.sentAt {
            deadlines[messageID] = StepDeadline(workflowID: workflowID, call: call, sentAt: sentAt, lastHeardAt: step.lastHeardAt, sends: step.sends)
        } else {
            // The broker's confirm and the worker's reply are awaited together: the reply
            // needs no "sent" record to be taken, and a failed send ends the wait.
            Task {
                do {
                    try await self.send(messageID: messageID, workflowID: workflowID, call: call, resentBecause: nil)
                } catch {
                    self.resolve(messageID: messageID, workflowID: workflowID, .unavailable("\(error)"))
                }
            }
        }
        let outcome = try await waitForOutcome(messageID: messageID)
        deadlines[messageID] = nil
        switch outcome {
        case .completed(let output):
            return output
        case .failed(let failure):
            throw ActivityError(activity: call.activity, failure: failure)
        case .unavailable(let reason):
            throw CoordinatorUnavailable(message: reason)
        }
    }

    /// Publishes a step's request (confirmed by the broker) and records that it was sent.
    private func send(messageID: String, workflowID: String, call: ActivityCall, resentBecause reason: String?) async throws {
        var headers: FieldTable = [
            FlowProtocol.Header.protocolVersion: .int(FlowProtocol.version),
            FlowProtocol.Header.workflowID: .string(workflowID),
        ]
        if let timeout = call.options.startToCloseTimeout {
            headers[FlowProtocol.Header.startToCloseTimeout] = .int(timeout.wholeMilliseconds)
        }
        if let policy = call.options.retryPolicy {
            headers[FlowProtocol.Header.retryPolicy] = .string(String(decoding: try JSONEncoder().encode(policy.wireForm), as: UTF8.self))
        }
        let now = Date()
        if let scheduleToClose = call.options.scheduleToCloseTimeout {
            headers[FlowProtocol.Header.deadline] = .int(Int64(now.timeIntervalSince1970 * 1000) + scheduleToClose.wholeMilliseconds)
        }
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: headers, deliveryMode: 2, correlationID: messageID,
            replyTo: configuration.names.coordinatorReplyQueue, messageID: messageID, timestamp: UInt64(now.timeIntervalSince1970),
            type: call.activity, appID: "antifragileflow"
        )
        let queueName = configuration.names.queue(call.queue)
        do {
            try await transport.publish(
                AMQPMessage(exchange: configuration.names.activitiesExchange, routingKey: queueName, properties: properties, body: Array(call.input.text.utf8))
            )
            let step = try await store.markSent(messageID: messageID, at: now, resentBecause: reason)
            // Only while the step is still awaited: its reply may have come first.
            if step?.status == .scheduled || step?.status == .parked, waiting[messageID] != nil || reason != nil {
                deadlines[messageID] = StepDeadline(workflowID: workflowID, call: call, sentAt: now, lastHeardAt: nil, sends: step?.sends ?? 1)
            }
        } catch {
            throw CoordinatorUnavailable(message: "cannot send \(call.activity) to \(queueName): \(error)")
        }
        statistics.record(reason == nil ? .stepSent : .stepResent)
    }

    private func waitForOutcome(messageID: String) async throws -> StepOutcome {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<StepOutcome, any Error>) in
                if let outcome = arrived.removeValue(forKey: messageID) {
                    continuation.resume(returning: outcome)
                } else {
                    waiting[messageID] = continuation
                }
            }
        } onCancel: {
            Task { await self.stopWaiting(messageID: messageID) }
        }
    }

    private func stopWaiting(messageID: String) {
        deadlines[messageID] = nil
        waiting.removeValue(forKey: messageID)?.resume(throwing: CancellationError())
    }

    /// Hands an outcome to the workflow waiting for it, or keeps it for when it does.
    private func resolve(messageID: String, workflowID: String, _ outcome: StepOutcome) {
        deadlines[messageID] = nil
        if let continuation = waiting.removeValue(forKey: messageID) {
            continuation.resume(returning: outcome)
        } else if running[workflowID] != nil {
            arrived[messageID] = outcome
        }
    }

    /// Sends overdue steps again, or gives up on them.
    private func superviseSteps() async {
        let now = Date()
        for (messageID, deadline) in deadlines {
            let call = deadline.call
            let budget = call.options.scheduleToCloseTimeout
                ?? call.retryPolicy.worstCaseDuration(attemptTimeout: call.attemptTimeout) + configuration.replyGrace
            var overdue = now > deadline.sentAt.addingTimeInterval(Double(budget.wholeMilliseconds) / 1000)
            var why = "no final reply within \(budget)"
            if let heartbeatTimeout = call.options.heartbeatTimeout, let heard = deadline.lastHeardAt,
               now > heard.addingTimeInterval(Double(heartbeatTimeout.wholeMilliseconds) / 1000) {
                overdue = true
                why = "no heartbeat within \(heartbeatTimeout)"
            }
            guard overdue, waiting[messageID] != nil else { continue }
            if deadline.sends <= call.options.maximumResends {
                logger.warning("step overdue; sending it again under the same message id", metadata: ["message.id": "\(messageID)", "reason": "\(why)"])
                do {
                    try await send(messageID: messageID, workflowID: deadline.workflowID, call: call, resentBecause: why)
                } catch {
                    logger.error("could not send an overdue step again; trying at the next check", metadata: ["message.id": "\(messageID)", "error": "\(error)"])
                }
            } else {
                let failure = ActivityFailure.nonRetryable(
                    .activityTimedOut,
                    "\(why), after \(deadline.sends) sends: is a worker consuming \(configuration.names.queue(call.queue))?"
                )
                statistics.record(.stepTimedOut)
                do {
                    _ = try await store.failStep(messageID: messageID, attempt: 0, failure: failure, status: .failed, timedOut: true)
                    resolve(messageID: messageID, workflowID: deadline.workflowID, .failed(failure))
                } catch {
                    logger.error("could not record a timed-out step; trying at the next check", metadata: ["message.id": "\(messageID)", "error": "\(error)"])
                }
            }
        }
    }

    // MARK: Timers

    func sleep(workflowID: String, timerKey: String, duration: Duration) async throws {
        let timer: (fireAt: Date, fired: Bool)
        do {
            timer = try await store.timer(workflowID: workflowID, key: timerKey, firesAfter: duration)
        } catch {
            throw CoordinatorUnavailable(message: "cannot record timer \(timerKey): \(error)")
        }
        if timer.fired { return }
        let remaining = timer.fireAt.timeIntervalSinceNow
        if remaining > 0 { try await Task.sleep(for: .milliseconds(Int64(remaining * 1000))) }
        do {
            try await store.markTimerFired(workflowID: workflowID, key: timerKey)
        } catch {
            throw CoordinatorUnavailable(message: "cannot record that timer \(timerKey) fired: \(error)")
        }
    }

    // MARK: Replies

    /// Records one reply from a worker and hands it to its workflow. Acknowledged only
    /// after it is recorded; one that cannot be recorded goes back to the queue.
    private func handleReply(_ delivery: AMQPDelivery) async {
        do {
            guard let reply = try? JSONDecoder().decode(ActivityReply.self, from: Data(delivery.body)) else {
                try await reject(delivery, from: configuration.names.coordinatorReplyQueue, failure: .nonRetryable(.malformedReply, "the message on the coordinator's reply queue is not an activity reply (docs/protocol.md, Replies)"))
                try await delivery.ack()
                return
            }
            let messageID = delivery.properties.correlationID ?? reply.messageID
            let attempt = Int(reply.attempt)
            switch reply.status {
            case .progress:
                try await store.recordProgress(messageID: messageID, attempt: attempt, details: reply.progress)
                deadlines[messageID]?.lastHeardAt = Date()
            case .completed:
                let change = try await store.completeStep(messageID: messageID, attempt: attempt, output: reply.output ?? .null)
                if case .recorded(let step, let unparked) = change {
                    statistics.record(.stepCompleted)
                    if unparked { logger.info("a replayed step completed; workflow unparked", metadata: ["workflow.id": "\(step.workflowID)", "message.id": "\(messageID)"]) }
                    resolve(messageID: messageID, workflowID: step.workflowID, .completed(reply.output ?? .null))
                }
                count(change, messageID: messageID)
            case .failed:
                let failure = reply.error ?? .nonRetryable(.unknown, "the worker sent no error")
                let options = try await store.step(messageID: messageID)?.options
                // A cancelled activity was not dead-lettered: there is nothing to replay, so the
                // workflow sees the failure instead of parking.
                let parks = options?.onFinalFailure != .throw && !failure.isCancellation
                let change = try await store.failStep(messageID: messageID, attempt: attempt, failure: failure, status: parks ? .parked : .failed)
                if case .recorded(let step, _) = change {
                    if parks {
                        statistics.record(.stepParked)
                        deadlines[messageID] = nil
                        logger.warning("a step failed for good and was dead-lettered; workflow parked until it is replayed", metadata: ["workflow.id": "\(step.workflowID)", "message.id": "\(messageID)", "error": "\(failure)"])
                        try await announceParked(step, failure: failure)
                    } else {
                        statistics.record(.stepFailed)
                        resolve(messageID: messageID, workflowID: step.workflowID, .failed(failure))
                    }
                }
                count(change, messageID: messageID)
            }
            try await delivery.ack()
        } catch let error as AMQPError where error.code == .staleDelivery {
            logger.warning("the broker connection dropped while handling a reply; it is redelivered")
        } catch {
            logger.error("could not record a reply; returning it to the queue", metadata: ["error": "\(error)"])
            try? await Task.sleep(for: .milliseconds(200))
            try? await delivery.nack(requeue: true)
        }
    }

    private func count(_ change: WorkflowStore.StepChange, messageID: String) {
        switch change {
        case .recorded:
            break
        case .alreadyFinal:
            statistics.record(.duplicateReply)
        case .unknown:
            statistics.record(.staleReply)
            logger.warning("reply for no step of a running workflow (unknown id, or its workflow ended); dropped", metadata: ["correlation.id": "\(messageID)"])
        }
    }

    // MARK: Commands

    private func handleCommand(_ delivery: AMQPDelivery) async {
        let properties = delivery.properties
        let type = properties.type ?? properties.headers?[FlowProtocol.Header.activity]?.stringValue ?? ""
        do {
            guard let kind = WorkflowCommand.Kind(rawValue: type) else {
                let known = WorkflowCommand.Kind.allCases.map(\.rawValue).joined(separator: ", ")
                try await refuse(delivery, .nonRetryable(.unknownCommand, "'\(type)' is not a workflow command: set the AMQP type to one of \(known) (docs/protocol.md, Workflows)"))
                return
            }
            switch kind {
            case .start:
                let command = try decode(WorkflowCommand.Start.self, delivery)
                let workflowID = command.workflowID ?? properties.messageID ?? UUID().uuidString
                guard !workflowID.isEmpty, !workflowID.contains("/") else {
                    throw ActivityFailure.nonRetryable(.invalidInput, "workflow_id must be non-empty and contain no '/'")
                }
                let recipient = properties.replyTo.flatMap { $0.isEmpty ? nil : ResultRecipient(replyTo: $0, correlationID: properties.correlationID ?? workflowID) }
                do {
                    try await start(workflow: command.workflow, id: workflowID, input: command.input ?? JSONText.emptyObject, recipient: recipient)
                } catch let failure as ActivityFailure {
                    // The start itself is refused: tell the starter in the shape it waits for.
                    try await reject(delivery, from: configuration.commandQueue, failure: failure)
                    if let recipient {
                        try await publishAnswer(WorkflowResult(status: .failed, workflow: command.workflow, workflowID: workflowID, error: failure), type: WorkflowResult.messageType, to: recipient)
                    }
                    try await delivery.ack()
                    return
                }
            case .cancel:
                let command = try decode(WorkflowCommand.Cancel.self, delivery)
                let record = try await cancel(workflowID: command.workflowID, reason: command.reason ?? "cancelled by command")
                let message = record.map { $0.status.isFinished ? "workflow \($0.id) had already ended (\($0.status.rawValue))" : "workflow \($0.id) is being cancelled" }
                    ?? "no workflow has id \(command.workflowID)"
                try await answer(delivery, CommandAnswer(accepted: record != nil, command: type, message: message))
            case .addSchedule:
                let command = try decode(WorkflowCommand.AddSchedule.self, delivery)
                let schedule = try await addSchedule(command)
                try await answer(delivery, CommandAnswer(accepted: true, command: type, message: "schedule \(schedule.name) runs \(schedule.workflow) next at \(ISO8601DateFormatter().string(from: schedule.nextRunAt))"))
            case .removeSchedule:
                let command = try decode(WorkflowCommand.RemoveSchedule.self, delivery)
                let removed = try await store.removeSchedule(name: command.name)
                try await answer(delivery, CommandAnswer(accepted: removed, command: type, message: removed ? "schedule \(command.name) removed" : "no schedule is named \(command.name)"))
            }
            try await delivery.ack()
        } catch let failure as ActivityFailure {
            try? await refuse(delivery, failure)
        } catch let error as AMQPError where error.code == .staleDelivery {
            logger.warning("the broker connection dropped while handling a command; it is redelivered")
        } catch {
            logger.error("could not handle a command; returning it to the queue", metadata: ["error": "\(error)"])
            try? await Task.sleep(for: .milliseconds(200))
            try? await delivery.nack(requeue: true)
        }
    }

    private func decode<Command: Decodable>(_ type: Command.Type, _ delivery: AMQPDelivery) throws -> Command {
        do {
            return try JSONDecoder().decode(type, from: Data(delivery.body))
        } catch let error as DecodingError {
            throw ActivityFailure.nonRetryable(.invalidCommand, "the body of \(delivery.properties.type ?? "the command") does not decode: \(error) (docs/protocol.md, Workflows)")
        }
    }

    /// Dead-letters a command that cannot be carried out, answers its sender, and acknowledges it.
    private func refuse(_ delivery: AMQPDelivery, _ failure: ActivityFailure) async throws {
        try await reject(delivery, from: configuration.commandQueue, failure: failure)
        try await answer(delivery, CommandAnswer(accepted: false, command: delivery.properties.type ?? "", message: failure.description))
        try await delivery.ack()
    }

    private func reject(_ delivery: AMQPDelivery, from queue: String, failure: ActivityFailure) async throws {
        let publisher = DeadLetterPublisher(transport: transport, exchange: configuration.names.deadLetterExchange, queueName: queue, publisherID: configuration.coordinatorID)
        try await publisher.deadLetter(delivery, failure: failure, attempt: nil)
        statistics.record(.rejectedMessage)
        logger.error("message dead-lettered", metadata: ["queue": "\(queue)", "error.type": "\(failure.type)", "reason": "\(failure.message)"])
    }

    private func answer(_ delivery: AMQPDelivery, _ answer: CommandAnswer) async throws {
        guard let replyTo = delivery.properties.replyTo, !replyTo.isEmpty else { return }
        let recipient = ResultRecipient(replyTo: replyTo, correlationID: delivery.properties.correlationID ?? delivery.properties.messageID ?? "")
        try await publishAnswer(answer, type: CommandAnswer.messageType, to: recipient)
    }

    private func publishAnswer<Body: Encodable>(_ body: Body, type: String, to recipient: ResultRecipient) async throws {
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: recipient.correlationID,
            timestamp: UInt64(Date().timeIntervalSince1970), type: type, appID: "antifragileflow"
        )
        do {
            try await transport.publish(AMQPMessage(routingKey: recipient.replyTo, properties: properties, body: Array(try JSONEncoder().encode(body))))
        } catch let error as AMQPError where error.code == .unroutable {
            logger.warning("a command's reply queue does not exist; answer not sent", metadata: ["reply.to": "\(recipient.replyTo)"])
        }
    }

    // MARK: Schedules

    /// Adds or replaces a schedule. Its first run is the next occurrence from now.
    @discardableResult
    public func addSchedule(_ command: WorkflowCommand.AddSchedule) async throws -> ScheduleRecord {
        guard registry.entry(named: command.workflow) != nil else {
            throw ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow named '\(command.workflow)' runs here (this coordinator runs: \(registry.names.joined(separator: ", ")))")
        }
        guard !command.name.isEmpty, !command.name.contains("/") else {
            throw ActivityFailure.nonRetryable(.invalidInput, "a schedule's name must be non-empty and contain no '/'")
        }
        let recurrence = try Recurrence(everySeconds: command.everySeconds, cron: command.cron)
        let schedule = ScheduleRecord(
            name: command.name, workflow: command.workflow, input: command.input ?? JSONText.emptyObject, everySeconds: command.everySeconds,
            cron: command.cron, nextRunAt: recurrence.next(after: Date()), lastRunAt: nil, runs: 0
        )
        try await store.upsertSchedule(schedule)
        logger.info("schedule added", metadata: ["schedule": "\(schedule.name)", "workflow.name": "\(schedule.workflow)", "next_run": "\(schedule.nextRunAt)"])
        return schedule
    }

    /// Starts the workflow of each due schedule once, however many runs were missed while
    /// the coordinator was down, and moves the schedule to its next time after now. The
    /// run's workflow id is the schedule's name and due time, so a crash between the start
    /// and the schedule's update starts nothing twice.
    private func runDueSchedules() async {
        guard let schedules = try? await store.schedules() else { return }
        let now = Date()
        for schedule in schedules where schedule.nextRunAt <= now {
            do {
                let recurrence = try Recurrence(everySeconds: schedule.everySeconds, cron: schedule.cron)
                let stamp = Int64(schedule.nextRunAt.timeIntervalSince1970)
                try await start(workflow: schedule.workflow, id: "\(schedule.name)@\(stamp)", input: schedule.input, recipient: nil)
                try await store.recordScheduleRun(name: schedule.name, runAt: now, nextRunAt: recurrence.next(after: now))
                statistics.record(.scheduleFired)
            } catch {
                logger.error("a schedule could not start its workflow", metadata: ["schedule": "\(schedule.name)", "error": "\(error)"])
            }
        }
    }
}

/// The coordinator could not record or send something; the workflow is suspended and
/// tried again, never failed for it.
struct CoordinatorUnavailable: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension JSONText {
    static let null = try! JSONText(validating: "null")
    static let emptyObject = try! JSONText(validating: "{}")
}
