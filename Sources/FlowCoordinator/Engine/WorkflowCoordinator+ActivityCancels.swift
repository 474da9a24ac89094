import FlowCore
import FlowTransport
import Foundation

/// Cancellation that reaches running activities: when a workflow's code stops waiting on a
/// step (its task was cancelled: a cancel of the workflow, a task group that gave up on a
/// branch) or the workflow ends with steps in flight, the workers running them are asked
/// to stop (``ActivityCancel``, docs/protocol.md). The worker cancels the attempt's task
/// and replies `failed` with kind `Cancelled`; the step ends so in the journal, unless its
/// result came first.
extension WorkflowCoordinator {
    /// Asks the workers of `queue` to cancel `messageID`. Best effort: with no worker
    /// listening, the request is dropped, and the step's result, if one comes, is recorded.
    func requestActivityCancel(messageID: String, queue: String, reason: String) async {
        let body = ActivityCancel(messageID: messageID, reason: reason)
        do {
            let message = AMQPMessage(
                exchange: configuration.names.activityCancelExchange, routingKey: queue,
                properties: AMQPProperties(contentType: FlowProtocol.contentType, correlationID: messageID, messageID: "\(messageID)#cancel", type: ActivityCancel.messageType, appID: CoordinatorMessages.appID),
                body: Array(try FlowJSON.encode(body))
            )
            try await transport.publish(message)
            statistics.record(.activityCancelRequested)
            logger.info("asked the workers to cancel a running step", metadata: ["message.id": "\(messageID)", "reason": "\(reason)"])
        } catch let error as AMQPError where error.code == .unroutable {
            logger.info("no worker listens for cancel requests on the step's queue; it runs to its end", metadata: ["message.id": "\(messageID)", "amqp.queue": "\(queue)"])
        } catch {
            logger.warning("could not send a step's cancel request; it runs to its end", metadata: ["message.id": "\(messageID)", "error": "\(error)"])
        }
    }

    /// Sends cancel requests for the steps the code of `run` stopped waiting on.
    ///
    /// Not while the coordinator stops (a shutdown, or its own task cancelled): its code's
    /// waits end then too, but the workflow still waits on those steps, and picks them up
    /// where they stand when it resumes.
    func cancelAbandonedSteps(of run: WorkflowRun) async throws {
        let abandoned = run.takeAbandoned()
        guard !abandoned.isEmpty, !machine.isShuttingDown, !Task.isCancelled, let journal = journals[run.workflowID] else { return }
        for position in abandoned {
            guard case .activity(let scheduled, .waiting)? = journal.commands[safe: position] else { continue }
            let messageID = "\(run.workflowID)/\(scheduled.stepKey)"
            guard stepOwners[messageID] != nil else { continue }
            await requestActivityCancel(messageID: messageID, queue: scheduled.queue, reason: "workflow \(run.workflowID) no longer waits for it (its task was cancelled)")
        }
    }

    /// Sends cancel requests for the steps a workflow that ended left running.
    func cancelSteps(_ steps: [(messageID: String, queue: String)], of workflowID: String, status: WorkflowStatus) async {
        for step in steps {
            await requestActivityCancel(messageID: step.messageID, queue: step.queue, reason: "workflow \(workflowID) ended (\(status.rawValue))")
        }
    }
}
