import FlowCore
import Foundation
import GRDB

extension SQLiteWorkflowStore {
    public func step(messageID: String) async throws -> StepRecord? {
        try await database.read { db in try StepRow.fetchOne(db, key: messageID)?.record() }
    }

    public func steps(workflowID: String) async throws -> [StepRecord] {
        try await database.read { db in
            try StepRow.filter(Column("workflow_id") == workflowID).order(Column("scheduled_at"), Column("message_id")).fetchAll(db).map { try $0.record() }
        }
    }

    public func scheduleStep(_ step: StepRecord, position: Int) async throws -> StepRecord {
        try await database.write { db in
            if try Self.stepHead(db, messageID: step.messageID) != nil, let existing = try StepRow.fetchOne(db, key: step.messageID) { return try existing.record() }
            var recorded = step
            recorded.status = .scheduled
            recorded.sends = 0
            recorded.attempt = 0
            try Self.takePosition(db, workflowID: step.workflowID, position)
            try db.cachedStatement(sql: """
                INSERT INTO step (message_id, workflow_id, step_key, activity, queue, input, options, status, sends, scheduled_at, attempt, position)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'scheduled', 0, ?, 0, ?)
                """).execute(arguments: [
                step.messageID, step.workflowID, step.stepKey, step.activity, step.queue, step.input.text, try FlowJSON.encodeText(step.options),
                step.scheduledAt.timeIntervalSince1970, position,
            ])
            let scheduled = WorkflowEvent.ScheduledActivity(
                position: position, activity: step.activity, queue: step.queue, input: step.input, options: step.options, stepKey: step.stepKey
            )
            try Self.record(db, workflowID: step.workflowID, .activityScheduled(scheduled), at: step.scheduledAt)
            try Self.append(db, workflowID: step.workflowID, kind: .activityScheduled, stepKey: step.stepKey, detail: "\(step.activity) on \(step.queue)", at: step.scheduledAt)
            return recorded
        }
    }

    public func markSent(messageID: String, at now: Date, resentBecause reason: String?) async throws -> StepHead? {
        try await database.write { db in
            try db.cachedStatement(sql: "UPDATE step SET sends = sends + 1, sent_at = ?, last_heard_at = NULL WHERE message_id = ?")
                .execute(arguments: [now.timeIntervalSince1970, messageID])
            guard let (head, _) = try Self.stepHead(db, messageID: messageID) else { return nil }
            if let reason {
                try Self.append(db, workflowID: head.workflowID, kind: .activityResent, stepKey: head.stepKey, detail: reason, at: now)
            }
            return head
        }
    }

    public func recordProgress(messageID: String, attempt: Int, details: JSONText?, at now: Date) async throws {
        try await database.write { db in
            guard var row = try StepRow.fetchOne(db, key: messageID), !row.status.isFinal else { return }
            row.lastHeardAt = now
            row.attempt = attempt
            try row.update(db)
            try Self.append(db, workflowID: row.workflowID, kind: .activityProgress, stepKey: row.stepKey, detail: "attempt \(attempt): \(details?.text.prefix(300) ?? "")", at: now)
        }
    }

    public func completeStep(messageID: String, attempt: Int, output: JSONText, at now: Date) async throws -> StepChange {
        try await database.write { db in
            // A repeat of a final reply is a duplicate, whether or not its workflow has
            // ended since; an answer to a step whose workflow ended before it is stale.
            guard let (head, position) = try Self.stepHead(db, messageID: messageID) else { return .unknown }
            if head.status.isFinal { return .alreadyFinal(head) }
            guard try Self.isRunning(db, workflowID: head.workflowID) else { return .unknown }
            let previous = head.status
            var row = head
            row.status = .completed
            try db.cachedStatement(sql: "UPDATE step SET status = 'completed', result = ?, attempt = ?, last_heard_at = ? WHERE message_id = ?")
                .execute(arguments: [output.text, attempt, now.timeIntervalSince1970, messageID])
            let completed = WorkflowEvent.activityCompleted(position: try StepRow.journalPosition(position, messageID: messageID), attempt: attempt, output: output)
            try Self.record(db, workflowID: row.workflowID, completed, at: now)
            try Self.append(db, workflowID: row.workflowID, kind: .activityCompleted, stepKey: row.stepKey, detail: "attempt \(attempt): \(output.text.prefix(300))", at: now)
            let unparked = previous == .parked
                ? try Self.unparkIfClear(db, workflowID: row.workflowID, at: now, because: "\(row.activity) completed after its replay") : false
            return .recorded(row, unparked: unparked)
        }
    }

    public func failStep(messageID: String, attempt: Int, failure: ActivityFailure, status: StepStatus, timedOut: Bool, at now: Date) async throws -> StepChange {
        try await database.write { db in
            guard var row = try StepRow.fetchOne(db, key: messageID) else { return .unknown }
            if row.status.isFinal || (row.status == .parked && status == .parked) { return .alreadyFinal(row.head) }
            guard try Self.isRunning(db, workflowID: row.workflowID) else { return .unknown }
            row.status = status
            row.error = try FlowJSON.encodeText(failure)
            row.attempt = attempt
            row.lastHeardAt = now
            try row.update(db)
            let position = try row.journalPosition()
            let event: WorkflowEvent = status == .parked ? .activityParked(position: position, attempt: attempt, failure: failure)
                : timedOut ? .activityTimedOut(position: position, failure: failure)
                : .activityFailed(position: position, attempt: attempt, failure: failure)
            try Self.record(db, workflowID: row.workflowID, event, at: now)
            try Self.append(db, workflowID: row.workflowID, kind: timedOut ? .activityTimedOut : .activityFailed, stepKey: row.stepKey, detail: "attempt \(attempt): \(failure)", at: now)
            if status == .parked, var workflow = try WorkflowRow.fetchOne(db, key: row.workflowID) {
                let reason = "waiting for dead-letter replay: \(row.activity) (message \(messageID)) failed: \(failure.description.prefix(300))"
                workflow.status = .parked
                workflow.parkedReason = reason
                workflow.updatedAt = now
                try workflow.update(db)
                try Self.append(db, workflowID: row.workflowID, kind: .workflowParked, stepKey: row.stepKey, detail: reason, at: now)
            }
            return .recorded(row.head, unparked: false)
        }
    }

    /// Sets a parked workflow running again once none of its steps is parked.
    private static func unparkIfClear(_ db: Database, workflowID: String, at now: Date, because reason: String) throws -> Bool {
        let parkedSteps = try StepRow.filter(Column("workflow_id") == workflowID && Column("status") == StepStatus.parked.rawValue).fetchCount(db)
        guard parkedSteps == 0, var workflow = try WorkflowRow.fetchOne(db, key: workflowID), workflow.status == .parked else { return false }
        workflow.status = .running
        workflow.parkedReason = nil
        workflow.updatedAt = now
        try workflow.update(db)
        try append(db, workflowID: workflowID, kind: .workflowUnparked, stepKey: nil, detail: reason, at: now)
        return true
    }

    /// Whether the workflow exists and has not ended.
    private static func isRunning(_ db: Database, workflowID: String) throws -> Bool {
        guard let status = try String.fetchOne(db.cachedStatement(sql: "SELECT status FROM workflow WHERE id = ?"), arguments: [workflowID]) else { return false }
        return WorkflowStatus(rawValue: status)?.isFinished == false
    }

    /// What identifies a step and where it stands, and its journal position: the hot
    /// paths' read, bound to a cached statement.
    static func stepHead(_ db: Database, messageID: String) throws -> (StepHead, position: Int?)? {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT workflow_id, step_key, activity, status, sends, position FROM step WHERE message_id = ?"), arguments: [messageID]
        )
        guard let row, let status = StepStatus(rawValue: row[3]) else { return nil }
        return (StepHead(messageID: messageID, workflowID: row[0], stepKey: row[1], activity: row[2], status: status, sends: row[4]), row[5])
    }

    // MARK: Timers

    public func timer(workflowID: String, key: String, position: Int, firesAfter duration: Duration, at now: Date) async throws -> (fireAt: Date, fired: Bool) {
        try await database.write { db in
            if let timer = try TimerRow.fetchOne(db, key: ["workflow_id": workflowID, "timer_key": key]) { return (timer.fireAt, timer.fired) }
            let fireAt = now.addingTimeInterval(duration.seconds)
            try Self.takePosition(db, workflowID: workflowID, position)
            try TimerRow(workflowID: workflowID, timerKey: key, fireAt: fireAt, fired: false, position: position).insert(db)
            try Self.record(db, workflowID: workflowID, .timerStarted(position: position, key: key, fireAt: fireAt), at: now)
            try Self.append(db, workflowID: workflowID, kind: .timerStarted, stepKey: key, detail: "fires at \(ISO8601DateFormatter().string(from: fireAt))", at: now)
            return (fireAt, false)
        }
    }

    public func markTimerFired(workflowID: String, key: String, at now: Date) async throws {
        try await database.write { db in
            guard var timer = try TimerRow.fetchOne(db, key: ["workflow_id": workflowID, "timer_key": key]), !timer.fired else { return }
            timer.fired = true
            try timer.update(db)
            try Self.record(db, workflowID: workflowID, .timerFired(position: try timer.journalPosition()), at: now)
            try Self.append(db, workflowID: workflowID, kind: .timerFired, stepKey: key, detail: "", at: now)
        }
    }

    // MARK: Schedules

    public func upsertSchedule(_ schedule: ScheduleRecord) async throws {
        try await database.write { db in
            var row = ScheduleRow(schedule)
            if let existing = try ScheduleRow.fetchOne(db, key: schedule.name) {
                row.lastRunAt = existing.lastRunAt
                row.runs = existing.runs
                try row.update(db)
            } else {
                try row.insert(db)
            }
        }
    }

    public func removeSchedule(name: String) async throws -> Bool {
        try await database.write { db in try ScheduleRow.deleteOne(db, key: name) }
    }

    public func schedules() async throws -> [ScheduleRecord] {
        try await database.read { db in try ScheduleRow.order(Column("name")).fetchAll(db).map { try $0.record() } }
    }

    public func recordScheduleRun(name: String, runAt: Date, nextRunAt: Date) async throws {
        try await database.write { db in
            guard var row = try ScheduleRow.fetchOne(db, key: name) else { return }
            row.lastRunAt = runAt
            row.nextRunAt = nextRunAt
            row.runs += 1
            try row.update(db)
        }
    }
}
