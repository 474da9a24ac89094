import FlowCore
import Foundation

extension WorkflowCoordinator {
    /// Adds or replaces a schedule. Its first run is the next occurrence from now. A
    /// replaced schedule keeps its run count, its last run and the runs waiting.
    @discardableResult
    public func addSchedule(_ command: WorkflowCommand.AddSchedule) async throws -> ScheduleRecord {
        guard registry.entry(named: command.workflow) != nil else {
            throw ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow named '\(command.workflow)' runs here (this coordinator runs: \(registry.names.joined(separator: ", ")))")
        }
        guard !command.name.isEmpty, !command.name.contains("/") else {
            throw ActivityFailure.nonRetryable(.invalidInput, "a schedule's name must be non-empty and contain no '/'")
        }
        let overlap = try command.overlap.map { text in
            guard let policy = OverlapPolicy(rawValue: text) else {
                throw ActivityFailure.nonRetryable(.invalidInput, "overlap '\(text)' is none of \(OverlapPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return policy
        } ?? .skip
        for (field, value) in [("catchup_window_seconds", command.catchupWindowSeconds), ("jitter_seconds", command.jitterSeconds)] where (value ?? 0) < 0 {
            throw ActivityFailure.nonRetryable(.invalidInput, "\(field) must not be negative")
        }
        let recurrence = try Recurrence(everySeconds: command.everySeconds, cron: command.cron)
        let schedule = ScheduleRecord(
            name: command.name, workflow: command.workflow, input: command.input ?? JSONText.emptyObject, everySeconds: command.everySeconds,
            cron: command.cron, nextRunAt: recurrence.next(after: now), lastRunAt: nil, runs: 0, overlap: overlap,
            catchupWindowSeconds: command.catchupWindowSeconds, jitterSeconds: command.jitterSeconds, paused: command.paused ?? false
        )
        try await store.upsertSchedule(schedule)
        logger.info("schedule added", metadata: ["schedule": "\(schedule.name)", "workflow.name": "\(schedule.workflow)", "next_run": "\(schedule.nextRunAt)"])
        return schedule
    }

    /// Pauses or resumes a schedule. Returns it, or nil when there is none. A resumed
    /// schedule starts the run it missed meanwhile once, if its catch-up window allows.
    @discardableResult
    public func pauseSchedule(_ name: String, paused: Bool, note: String?) async throws -> ScheduleRecord? {
        guard let schedule = try await store.setSchedulePaused(name: name, paused: paused, note: note) else { return nil }
        logger.info(paused ? "schedule paused" : "schedule resumed", metadata: ["schedule": "\(name)", "note": "\(note ?? "")"])
        return schedule
    }

    /// Starts the runs of a schedule due after `from` up to `to`, each under the workflow
    /// id it would have had (so a backfill repeated starts nothing twice), whatever its
    /// overlap policy. Returns the ids started or found.
    public func backfillSchedule(_ command: WorkflowCommand.BackfillSchedule) async throws -> [String]? {
        guard let schedule = try await store.schedules().first(where: { $0.name == command.name }) else { return nil }
        guard command.from < command.to else { throw ActivityFailure.nonRetryable(.invalidInput, "a backfill's 'from' must come before its 'to'") }
        var ids: [String] = []
        for nominal in try ScheduleStep.occurrences(of: schedule, from: command.from, to: command.to) {
            let id = ScheduleStep.workflowID(of: schedule.name, nominal: nominal)
            try await start(workflow: schedule.workflow, id: id, input: schedule.input, recipient: nil)
            ids.append(id)
        }
        logger.info("schedule backfilled", metadata: ["schedule": "\(schedule.name)", "runs": "\(ids.count)"])
        return ids
    }

    /// Moves each schedule on as ``ScheduleStep`` decides: starts its due run (or the run
    /// waiting in its buffer), skips or buffers it while the previous run still goes, and
    /// cancels the previous one under `cancel_other`. A run's workflow id is the schedule's
    /// name and due time, so a crash between a start and the schedule's update starts
    /// nothing twice.
    func runDueSchedules() async {
        guard let schedules = try? await store.schedules() else { return }
        let now = self.now
        for schedule in schedules where !schedule.paused {
            do {
                var previousRunning = false
                if let last = schedule.lastWorkflowID {
                    previousRunning = try await store.workflow(id: last).map { !$0.status.isFinished } ?? false
                }
                let step = try ScheduleStep.decide(schedule, now: now, previousRunning: previousRunning)
                var next = step.schedule
                switch step.action {
                case .wait:
                    continue
                case .start(let nominal, let cancelling):
                    if let cancelling {
                        try await cancel(workflowID: cancelling, reason: "schedule \(schedule.name) started its next run (overlap: cancel_other)")
                    }
                    let id = ScheduleStep.workflowID(of: schedule.name, nominal: nominal)
                    try await start(workflow: schedule.workflow, id: id, input: schedule.input, recipient: nil)
                    next.lastRunAt = now
                    next.lastWorkflowID = id
                    next.runs += 1
                    statistics.record(.scheduleFired)
                case .skip(let nominal, let reason):
                    next.skipped += 1
                    statistics.record(.scheduleSkipped)
                    logger.info("a schedule's run was skipped", metadata: ["schedule": "\(schedule.name)", "due": "\(nominal)", "reason": "\(reason)"])
                case .buffer(let nominal):
                    logger.info("a schedule's run waits for the previous one", metadata: ["schedule": "\(schedule.name)", "due": "\(nominal)", "waiting": "\(next.buffered.count)"])
                }
                // Its run state only: a pause or a replaced definition that came while this
                // decision awaited is kept (it takes effect at the next check).
                try await store.recordScheduleState(next)
            } catch {
                logger.error("a schedule could not start its workflow", metadata: ["schedule": "\(schedule.name)", "error": "\(error)"])
            }
        }
    }
}
