import FlowCore
import Foundation

extension WorkflowCoordinator {
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
            cron: command.cron, nextRunAt: recurrence.next(after: now), lastRunAt: nil, runs: 0
        )
        try await store.upsertSchedule(schedule)
        logger.info("schedule added", metadata: ["schedule": "\(schedule.name)", "workflow.name": "\(schedule.workflow)", "next_run": "\(schedule.nextRunAt)"])
        return schedule
    }

    /// Starts the workflow of each due schedule once, however many runs were missed while
    /// the coordinator was down, and moves the schedule to its next time after now. The
    /// run's workflow id is the schedule's name and due time, so a crash between the start
    /// and the schedule's update starts nothing twice.
    func runDueSchedules() async {
        guard let schedules = try? await store.schedules() else { return }
        let now = self.now
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
