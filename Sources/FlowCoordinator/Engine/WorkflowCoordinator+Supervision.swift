import FlowCore
import Foundation
import ServiceLifecycle

extension WorkflowCoordinator {
    /// Every `supervisionInterval` of the coordinator's clock: sends overdue steps again or
    /// gives up on them, starts due schedules, and launches again suspended workflows whose
    /// time has come. Ends when its task is cancelled (the coordinator stops).
    func supervise() async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await superviseSteps()
            await runDueSchedules()
            await relaunchDue()
            await refreshParkedGauges()
            await sendPendingResults()
            do {
                try await clock.sleep(until: clock.now.advanced(by: configuration.supervisionInterval), tolerance: nil)
            } catch {
                return
            }
        }
    }

    /// Sends the results a failed publish kept from their recipients, until all are sent.
    private func sendPendingResults() async {
        guard resultsPending else { return }
        do {
            try await deliverPendingResults()
            resultsPending = false
            logger.info("the workflow results that could not be sent are sent")
        } catch {
            logger.warning("could not send the pending workflow results; trying at the next check", metadata: ["error": "\(error)"])
        }
    }

    /// Counts the parked workflows and finds when the longest-parked one parked, for
    /// `flow.workflows.parked` and its age alert; at most every ``parkedGaugeInterval``.
    private func refreshParkedGauges() async {
        guard now >= parkedGaugesDue else { return }
        parkedGaugesDue = now.addingTimeInterval(Self.parkedGaugeInterval)
        let parked = WorkflowFilter(statuses: [.parked])
        guard let count = try? await store.countWorkflows(matching: parked) else { return }
        // A parked workflow's `updated_at` is when it parked (or, later, when a cancel was
        // asked of it): near enough for an alert that counts in minutes.
        let oldest = count == 0 ? nil : (try? await store.workflows(matching: parked, after: nil, limit: 1000))?.map(\.updatedAt).min()
        statistics.setParked(count, oldestSince: oldest)
    }

    private func superviseSteps() async {
        for action in machine.overdue(at: now, queueName: { self.configuration.names.queue($0) }) {
            switch action {
            case .resend(let messageID, let step, let reason):
                // A parallel branch of a workflow that was cancelled no longer waits.
                guard stepOwners[messageID] != nil else {
                    machine.stepEnded(messageID)
                    continue
                }
                logger.warning("step overdue; sending it again under the same message id", metadata: ["message.id": "\(messageID)", "reason": "\(reason)"])
                do {
                    try await send(messageID: messageID, workflowID: step.workflowID, call: step.call, resentBecause: reason)
                } catch {
                    logger.error("could not send an overdue step again; trying at the next check", metadata: ["message.id": "\(messageID)", "error": "\(error)"])
                }
            case .timeOut(let messageID, _, let failure):
                do {
                    _ = try await deliverOutcome(.timedOut(failure), messageID: messageID)
                } catch {
                    logger.error("could not record a timed-out step; trying at the next check", metadata: ["message.id": "\(messageID)", "error": "\(error)"])
                }
            }
        }
    }
}
