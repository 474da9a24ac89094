import FlowCore
import FlowObservability
import FlowRuntime
import FlowTransport
import Foundation

extension WorkflowCoordinator {
    /// Carries out one command from `workflow-commands`, answers its sender when it gave a
    /// `reply_to`, and acknowledges it. A command that can never be carried out is
    /// dead-lettered with its reason; one the store could not take goes back to the queue.
    func handleCommand(_ delivery: AMQPDelivery) async {
        observeLag(of: delivery, in: configuration.commandQueue)
        let type = Self.commandType(of: delivery)
        do {
            guard let kind = WorkflowCommand.Kind(rawValue: type) else {
                let known = (WorkflowCommand.Kind.allCases.map(\.rawValue) + WorkflowQuery.Kind.allCases.map(\.rawValue)).joined(separator: ", ")
                try await refuse(delivery, .nonRetryable(.unknownCommand, "'\(type)' is not a workflow command: set the AMQP type to one of \(known) (docs/protocol.md, Workflows)"))
                return
            }
            switch kind {
            case .start:
                guard try await startFromCommand(delivery) else { return }
            case .cancel:
                let command = try decode(WorkflowCommand.Cancel.self, delivery)
                // Read first: a cancelled workflow may well have ended by the time the cancel returns.
                let before = try await store.workflow(id: command.workflowID)
                let record = try await cancel(workflowID: command.workflowID, reason: command.reason ?? "cancelled by command", terminate: command.terminate ?? false)
                let message = switch (before, record) {
                case (let before?, _) where before.status.isFinished: "workflow \(before.id) had already ended (\(before.status.rawValue))"
                case (_, let record?) where record.status.isFinished: "workflow \(record.id) was \(command.terminate == true ? "terminated" : "cancelled")"
                case (_, let record?): "workflow \(record.id) is being cancelled"
                default: "no workflow has id \(command.workflowID)"
                }
                try await answer(delivery, CommandAnswer(accepted: record != nil, command: type, message: message))
            case .pause, .unpause:
                let command = try decode(WorkflowCommand.Pause.self, delivery)
                let pausing = kind == .pause
                let changed = try await pause(workflowID: command.workflowID, reason: pausing ? command.reason ?? "paused by command" : nil)
                let message = switch changed {
                case true?: "workflow \(command.workflowID) \(pausing ? "paused: it records and sends no new command until unpaused" : "unpaused")"
                case false?: "workflow \(command.workflowID) was \(pausing ? "paused" : "not paused") already"
                case nil: "no open workflow has id \(command.workflowID)"
                }
                try await answer(delivery, CommandAnswer(accepted: changed != nil, command: type, message: message))
            case .reset:
                let command = try decode(WorkflowCommand.Reset.self, delivery)
                let record = try await reset(
                    workflowID: command.workflowID, to: command.position, keepSignals: command.dropSignals != true, reason: command.reason ?? "reset by command",
                    requestID: command.resetID ?? delivery.properties.messageID
                )
                let message = record.map { "workflow \($0.id) reset to before command \(command.position): run \($0.run) goes on from there (the run before is \(WorkflowRecord.runID(of: $0.id, run: $0.run - 1)))" }
                    ?? "no workflow has id \(command.workflowID)"
                try await answer(delivery, CommandAnswer(accepted: record != nil, command: type, message: message))
            case .pauseActivity, .unpauseActivity, .resetActivity:
                let command = try decode(WorkflowCommand.ActivityCommand.self, delivery)
                let control: ActivityControl = switch kind {
                case .pauseActivity: .pause(reason: command.reason ?? "paused by command")
                case .unpauseActivity: .unpause
                default: .reset
                }
                let outcome = try await controlActivity(workflowID: command.workflowID, position: command.position, control)
                try await answer(delivery, CommandAnswer(accepted: outcome.changed, command: type, message: outcome.message))
            case .signal:
                let command = try decode(WorkflowCommand.Signal.self, delivery)
                try await prepare(command.workflowID, name: command.name, what: "a signal", startWorkflow: command.startWorkflow, startInput: command.startInput, delivery)
                let signalID = command.signalID ?? delivery.properties.messageID ?? UUID().uuidString
                let outcome = try await signal(workflowID: command.workflowID, name: command.name, input: command.input ?? JSONText.emptyObject, signalID: signalID)
                try await answer(delivery, CommandAnswer(accepted: outcome.accepted, command: type, message: outcome.message(workflowID: command.workflowID, name: command.name)))
            case .update:
                let command = try decode(WorkflowCommand.Update.self, delivery)
                try await prepare(command.workflowID, name: command.name, what: "an update", startWorkflow: command.startWorkflow, startInput: command.startInput, delivery)
                let updateID = command.updateID ?? delivery.properties.messageID ?? UUID().uuidString
                let outcome = try await update(workflowID: command.workflowID, name: command.name, input: command.input ?? JSONText.emptyObject, updateID: updateID)
                if let replyTo = delivery.properties.replyTo, !replyTo.isEmpty {
                    let recipient = ResultRecipient(replyTo: replyTo, correlationID: delivery.properties.correlationID ?? updateID)
                    try await publishAnswer(outcome.answer(workflowID: command.workflowID, name: command.name, updateID: updateID), type: WorkflowUpdateResult.messageType, to: recipient)
                }
            case .addSchedule:
                let command = try decode(WorkflowCommand.AddSchedule.self, delivery)
                let schedule = try await addSchedule(command)
                try await answer(delivery, CommandAnswer(accepted: true, command: type, message: "schedule \(schedule.name) runs \(schedule.workflow) next at \(ISO8601DateFormatter().string(from: schedule.nextRunAt))"))
            case .removeSchedule:
                let command = try decode(WorkflowCommand.RemoveSchedule.self, delivery)
                let removed = try await store.removeSchedule(name: command.name)
                try await answer(delivery, CommandAnswer(accepted: removed, command: type, message: removed ? "schedule \(command.name) removed" : "no schedule is named \(command.name)"))
            case .pauseSchedule, .resumeSchedule:
                let command = try decode(WorkflowCommand.PauseSchedule.self, delivery)
                let paused = kind == .pauseSchedule
                let schedule = try await pauseSchedule(command.name, paused: paused, note: command.note)
                let message = schedule == nil ? "no schedule is named \(command.name)" : "schedule \(command.name) \(paused ? "paused" : "resumed")"
                try await answer(delivery, CommandAnswer(accepted: schedule != nil, command: type, message: message))
            case .backfillSchedule:
                let command = try decode(WorkflowCommand.BackfillSchedule.self, delivery)
                let ids = try await backfillSchedule(command)
                let message = ids.map { "schedule \(command.name) started \($0.count) runs: \($0.prefix(5).joined(separator: ", "))\($0.count > 5 ? ", …" : "")" }
                    ?? "no schedule is named \(command.name)"
                try await answer(delivery, CommandAnswer(accepted: ids != nil, command: type, message: message))
            }
            try await delivery.ack()
            machine.handlingSucceeded()
        } catch let failure as ActivityFailure {
            try? await refuse(delivery, failure)
        } catch let error as AMQPError where error.code == .staleDelivery {
            logger.warning("the broker connection dropped while handling a command; it is redelivered")
        } catch {
            await returnToQueue(delivery, after: error, what: "a command")
        }
    }

    /// How many commands run side by side, each lane in order.
    static var commandLanes: Int { 32 }
    /// How many commands and queries the coordinator holds unacknowledged.
    static var commandPrefetch: UInt16 { 128 }

    /// The lane of a command: the same for every command naming the same workflow (or,
    /// for schedule commands, the same schedule), so those are carried out in the order
    /// they came. A body that does not decode goes to lane 0, which refuses it.
    static func lane(of delivery: AMQPDelivery) -> Int {
        lane(body: delivery.body, messageID: delivery.properties.messageID)
    }

    static func lane(body: [UInt8], messageID: String?) -> Int {
        let target = try? FlowJSON.decode(WorkflowCommand.Target.self, from: body)
        let key = target?.workflowID ?? target.flatMap { $0.name.map { "schedule \($0)" } } ?? messageID ?? ""
        return key.isEmpty ? 0 : Int(UInt(bitPattern: key.hashValue) % UInt(commandLanes))
    }

    /// A command's or query's name: the AMQP `type`, or the `flow-activity` header of
    /// clients that cannot set it.
    static func commandType(of delivery: AMQPDelivery) -> String {
        delivery.properties.type ?? delivery.properties.headers?[FlowProtocol.Header.activity]?.stringValue ?? ""
    }

    /// Starts the workflow a command names. Returns false when the command was refused and
    /// settled here (the starter was told in the shape it waits for).
    private func startFromCommand(_ delivery: AMQPDelivery) async throws -> Bool {
        let properties = delivery.properties
        let command = try decode(WorkflowCommand.Start.self, delivery)
        let workflowID = command.workflowID ?? properties.messageID ?? UUID().uuidString
        guard !workflowID.isEmpty, !workflowID.contains("/") else {
            throw ActivityFailure.nonRetryable(.invalidInput, "workflow_id must be non-empty and contain no '/'")
        }
        let recipient = properties.replyTo.flatMap { $0.isEmpty ? nil : ResultRecipient(replyTo: $0, correlationID: properties.correlationID ?? workflowID) }
        do {
            try await start(
                workflow: command.workflow, id: workflowID, input: command.input ?? JSONText.emptyObject, recipient: recipient,
                trace: MessageTracing.context(of: properties.headers)
            )
            return true
        } catch let failure as ActivityFailure {
            try await reject(delivery, from: configuration.commandQueue, failure: failure)
            if let recipient {
                try await publishAnswer(WorkflowResult(status: .failed, workflow: command.workflow, workflowID: workflowID, error: failure), type: WorkflowResult.messageType, to: recipient)
            }
            try await delivery.ack()
            return false
        }
    }

    /// Checks a signal's or update's target, and starts its workflow first when the command
    /// asks (signal-with-start, update-with-start: starting an id that exists starts nothing).
    private func prepare(_ workflowID: String, name: String, what: String, startWorkflow: String?, startInput: JSONText?, _ delivery: AMQPDelivery) async throws {
        guard !workflowID.isEmpty, !workflowID.contains("/"), !name.isEmpty else {
            throw ActivityFailure.nonRetryable(.invalidCommand, "\(what) needs a workflow_id (non-empty, no '/') and a name")
        }
        if let startWorkflow {
            try await start(workflow: startWorkflow, id: workflowID, input: startInput ?? JSONText.emptyObject, recipient: nil, trace: MessageTracing.context(of: delivery.properties.headers))
        }
    }

    private func decode<Command: Decodable>(_ type: Command.Type, _ delivery: AMQPDelivery) throws -> Command {
        do {
            return try FlowJSON.decode(type, from: delivery.body)
        } catch let error as DecodingError {
            throw ActivityFailure.nonRetryable(.invalidCommand, "the body of \(delivery.properties.type ?? "the command") does not decode: \(FlowJSON.describe(error)) (docs/protocol.md, Workflows)")
        }
    }

    /// Dead-letters a command that cannot be carried out, answers its sender, and acknowledges it.
    private func refuse(_ delivery: AMQPDelivery, _ failure: ActivityFailure) async throws {
        try await reject(delivery, from: configuration.commandQueue, failure: failure)
        try await answer(delivery, CommandAnswer(accepted: false, command: delivery.properties.type ?? "", message: failure.description))
        try await delivery.ack()
    }

    func reject(_ delivery: AMQPDelivery, from queue: String, failure: ActivityFailure) async throws {
        let publisher = DeadLetterPublisher(
            transport: transport, exchange: configuration.names.deadLetterExchange, queueName: queue, publisherID: configuration.coordinatorID,
            onRefusal: logger.refusedPublishes(of: "dead-letter copy", messageID: delivery.properties.messageID ?? "")
        )
        try await publisher.deadLetter(delivery, failure: failure, attempt: nil)
        statistics.record(.rejectedMessage)
        logger.error("message dead-lettered", metadata: ["queue": "\(queue)", "error.type": "\(failure.type)", "reason": "\(failure.message)"])
    }

    private func answer(_ delivery: AMQPDelivery, _ answer: CommandAnswer) async throws {
        guard let replyTo = delivery.properties.replyTo, !replyTo.isEmpty else { return }
        let recipient = ResultRecipient(replyTo: replyTo, correlationID: delivery.properties.correlationID ?? delivery.properties.messageID ?? "")
        try await publishAnswer(answer, type: CommandAnswer.messageType, to: recipient)
    }
}
