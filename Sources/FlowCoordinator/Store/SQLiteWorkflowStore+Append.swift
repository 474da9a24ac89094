import FlowCore
import Foundation
import GRDB

/// Appending to a journal, and the projections each event changes in the same transaction.
///
/// Every step takes this path several times, so it binds values to cached statements: no
/// Codable record, no column-name conversion, and the one read it makes (the workflow's
/// head, for the fence) is the one the check needs (`../shared/notes/workflow-throughput.md`).
extension SQLiteWorkflowStore {
    @discardableResult
    public func append(_ events: [WorkflowEvent], to workflowID: String, expectedSequence: Int64, epoch: Int64, at now: Date) async throws -> [JournalEntry] {
        // Encoded before the transaction: the writer is the store's one serial resource.
        let payloads = try events.map { try $0.payloadText() }
        return try await write { db in
            let head = try Row.fetchOne(db.cachedStatement(sql: "SELECT last_sequence, epoch, status FROM workflow WHERE id = ?"), arguments: [workflowID])
            guard let head else { throw WorkflowStoreError(.noSuchWorkflow, "there is no workflow \(workflowID) to append to") }
            let (last, owner): (Int64, Int64) = (head[0], head[1])
            guard epoch >= owner else {
                throw WorkflowStoreError(.staleEpoch, "workflow \(workflowID) is owned under epoch \(owner), newer than this writer's \(epoch): another coordinator took it over")
            }
            guard last == expectedSequence else {
                throw WorkflowStoreError(.sequenceConflict, "workflow \(workflowID)'s journal ends at event \(last), not \(expectedSequence) as this writer read it: read it again")
            }
            var status = WorkflowStatus(rawValue: head[2]) ?? .running
            var entries: [JournalEntry] = []
            for (offset, event) in events.enumerated() {
                let entry = JournalEntry(sequence: last + 1 + Int64(offset), epoch: epoch, recordedAt: now, event: event)
                try db.cachedStatement(sql: "INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?)")
                    .execute(arguments: [workflowID, entry.sequence, epoch, event.kind, event.position, now.timeIntervalSince1970, payloads[offset]])
                status = try Self.project(db, event, of: workflowID, status: status, at: now)
                entries.append(entry)
            }
            try db.cachedStatement(sql: "UPDATE workflow SET last_sequence = ?, epoch = ? WHERE id = ?")
                .execute(arguments: [last + Int64(events.count), epoch, workflowID])
            return entries
        }
    }

    /// Changes the projections as `event` says, and returns the workflow's status after it.
    static func project(_ db: Database, _ event: WorkflowEvent, of workflowID: String, status: WorkflowStatus, at now: Date) throws -> WorkflowStatus {
        var stepKey: String?
        var activity: String?
        var status = status
        switch event {
        case .activityScheduled(let scheduled):
            try db.cachedStatement(sql: """
                INSERT INTO step (message_id, workflow_id, step_key, activity, queue, input, options, status, sends, scheduled_at, attempt, position)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'scheduled', 0, ?, 0, ?)
                """).execute(arguments: [
                "\(workflowID)/\(scheduled.stepKey)", workflowID, scheduled.stepKey, scheduled.activity, scheduled.queue, scheduled.input.text,
                try WorkflowEvent.optionsText(scheduled.options), now.timeIntervalSince1970, scheduled.position,
            ])
        case .activityCompleted(let position, let attempt, let output):
            (stepKey, activity) = try answer(db, workflowID, position, .completed, attempt: attempt, result: output.text, error: nil, at: now)
        case .activityFailed(let position, let attempt, let failure):
            (stepKey, activity) = try answer(db, workflowID, position, .failed, attempt: attempt, result: nil, error: try FlowJSON.encodeText(failure), at: now)
        case .activityTimedOut(let position, let failure):
            (stepKey, activity) = try answer(db, workflowID, position, .failed, attempt: nil, result: nil, error: try FlowJSON.encodeText(failure), at: now)
        case .activityParked(let position, let attempt, let failure):
            (stepKey, activity) = try answer(db, workflowID, position, .parked, attempt: attempt, result: nil, error: try FlowJSON.encodeText(failure), at: now)
        case .activityPaused(let position, _):
            let row = try Row.fetchOne(
                db, sql: "UPDATE step SET status = 'paused' WHERE workflow_id = ? AND position = ? RETURNING step_key, activity", arguments: [workflowID, position]
            )
            (stepKey, activity) = (row?[0], row?[1])
        case .activityResumed(let position, let key, let resetAttempts):
            // Under its new key: a new message id, sent from scratch.
            activity = try String.fetchOne(
                db, sql: """
                    UPDATE step SET message_id = ? || '/' || ?, step_key = ?, status = 'scheduled', sends = 0, sent_at = NULL, last_heard_at = NULL, error = NULL,
                        attempt = CASE WHEN ? THEN 0 ELSE attempt END, heartbeat = CASE WHEN ? THEN NULL ELSE heartbeat END
                    WHERE workflow_id = ? AND position = ? RETURNING activity
                    """,
                arguments: [workflowID, key, key, resetAttempts, resetAttempts, workflowID, position]
            )
            stepKey = key
        case .timerStarted(let position, let key, let fireAt):
            try db.cachedStatement(sql: "INSERT INTO timer (workflow_id, timer_key, fire_at, fired, position) VALUES (?, ?, ?, 0, ?)")
                .execute(arguments: [workflowID, key, fireAt.timeIntervalSince1970, position])
        case .timerFired(let position):
            stepKey = try String.fetchOne(
                db.cachedStatement(sql: "UPDATE timer SET fired = 1 WHERE workflow_id = ? AND position = ? RETURNING timer_key"), arguments: [workflowID, position]
            )
        case .childCompleted(let position, _), .childFailed(let position, _):
            // The child's id, for the history line, from the command it answers.
            stepKey = try String.fetchOne(
                db.cachedStatement(sql: "SELECT json_extract(payload, '$.child.workflow_id') FROM workflow_event WHERE workflow_id = ? AND position = ? AND kind = 'child_scheduled'"),
                arguments: [workflowID, position]
            )
        case .cancelRequested:
            try db.cachedStatement(sql: "UPDATE workflow SET cancel_requested = 1, updated_at = ? WHERE id = ?").execute(arguments: [now.timeIntervalSince1970, workflowID])
        case .replayDiverged(let reason):
            try db.execute(sql: "UPDATE workflow SET divergence = ? WHERE id = ?", arguments: [reason, workflowID])
        case .replayRecovered:
            try db.execute(sql: "UPDATE workflow SET divergence = NULL WHERE id = ?", arguments: [workflowID])
        case .workflowCompleted(let output):
            try end(db, workflowID, .completed, output: output.text, error: nil, at: now)
            status = .completed
        case .workflowFailed(let failure):
            try end(db, workflowID, .failed, output: nil, error: try FlowJSON.encodeText(failure), at: now)
            status = .failed
        case .workflowCancelled(let failure):
            try end(db, workflowID, .cancelled, output: nil, error: try FlowJSON.encodeText(failure), at: now)
            status = .cancelled
        case .workflowContinuedAsNew:
            try end(db, workflowID, .continuedAsNew, output: nil, error: nil, at: now)
            status = .continuedAsNew
        case .workflowReset(let position, let reason):
            let failure = ActivityFailure.cancelled("reset to before command \(position): \(reason)")
            try end(db, workflowID, .reset, output: nil, error: try FlowJSON.encodeText(failure), at: now)
            status = .reset
        case .markerRecorded(_, WorkflowProjection.searchAttributesMarker, let value):
            try fileSearchAttributes(db, workflowID, WorkflowProjection.searchAttributeChanges(value))
        case .markerRecorded(_, WorkflowProjection.memoMarker, let value):
            try db.cachedStatement(sql: "UPDATE workflow SET memo = json_patch(coalesce(memo, '{}'), ?) WHERE id = ?").execute(arguments: [value.text, workflowID])
        case .workflowStarted, .markerRecorded, .signalReceived, .updateAccepted, .updateCompleted, .childScheduled, .workflowPaused, .workflowUnpaused, .unrecognized:
            break
        }
        try project(db, workflowID: workflowID, lines: WorkflowProjection.lines(for: event, stepKey: stepKey), at: now)
        // A park, a divergence, or an answer to a step of a parked workflow: the status and
        // its reason follow from what is parked now.
        if !status.isFinished, WorkflowProjection.touchesPark(event) || (status == .parked && activity != nil) {
            status = try refreshPark(db, workflowID, from: status, cause: event, stepKey: stepKey, activity: activity, at: now)
        }
        return status
    }

    /// Sets (or, for nil, removes) a workflow's search attributes, each kept as
    /// ``WorkflowProjection/storedAttribute(_:)`` says.
    private static func fileSearchAttributes(_ db: Database, _ workflowID: String, _ changes: [String: SearchAttribute?]) throws {
        for (key, value) in changes.sorted(by: { $0.key < $1.key }) {
            let (text, number) = WorkflowProjection.storedAttribute(value)
            if value == nil {
                try db.cachedStatement(sql: "DELETE FROM workflow_attribute WHERE workflow_id = ? AND key = ?").execute(arguments: [workflowID, key])
            } else {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO workflow_attribute (workflow_id, key, text_value, number_value) VALUES (?, ?, ?, ?)")
                    .execute(arguments: [workflowID, key, text, number])
            }
        }
    }

    /// Records an answer on its step's row; returns the step's key and activity.
    private static func answer(
        _ db: Database, _ workflowID: String, _ position: Int, _ status: StepStatus, attempt: Int?, result: String?, error: String?, at now: Date
    ) throws -> (String?, String?) {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: """
                UPDATE step SET status = ?, attempt = coalesce(?, attempt), result = coalesce(?, result), error = coalesce(?, error), last_heard_at = ?
                WHERE workflow_id = ? AND position = ? RETURNING step_key, activity
                """),
            arguments: [status.rawValue, attempt, result, error, now.timeIntervalSince1970, workflowID, position]
        )
        return (row?[0], row?[1])
    }

    private static func end(_ db: Database, _ workflowID: String, _ status: WorkflowStatus, output: String?, error: String?, at now: Date) throws {
        try db.cachedStatement(sql: "UPDATE workflow SET status = ?, output = ?, error = ?, parked_reason = NULL, updated_at = ?, finished_at = ? WHERE id = ?")
            .execute(arguments: [status.rawValue, output, error, now.timeIntervalSince1970, now.timeIntervalSince1970, workflowID])
        try db.cachedStatement(sql: "UPDATE step SET status = 'cancelled', error = ? WHERE workflow_id = ? AND status IN ('scheduled', 'parked', 'paused')")
            .execute(arguments: [try FlowJSON.encodeText(WorkflowProjection.abandonedStepError(status)), workflowID])
    }

    /// Sets the status and parked reason that follow from the workflow's divergence and
    /// parked steps (the rule ``WorkflowJournal/status`` holds), with a line when it changes.
    private static func refreshPark(
        _ db: Database, _ workflowID: String, from old: WorkflowStatus, cause: WorkflowEvent, stepKey: String?, activity: String?, at now: Date
    ) throws -> WorkflowStatus {
        var reason = try String.fetchOne(db, sql: "SELECT divergence FROM workflow WHERE id = ?", arguments: [workflowID])
        if reason == nil, let parked = try Row.fetchOne(
            db, sql: "SELECT activity, step_key, error FROM step WHERE workflow_id = ? AND status = 'parked' ORDER BY position LIMIT 1", arguments: [workflowID]
        ) {
            let failure = try (parked[2] as String?).map { try FlowJSON.decode(ActivityFailure.self, from: $0) } ?? .nonRetryable(.unknown, "no error was recorded")
            reason = WorkflowProjection.parkedReason(workflowID: workflowID, activity: parked[0], stepKey: parked[1], failure: failure)
        }
        let new: WorkflowStatus = reason == nil ? .running : .parked
        if new != old {
            try db.execute(sql: "UPDATE workflow SET status = ?, parked_reason = ?, updated_at = ? WHERE id = ?", arguments: [new.rawValue, reason, now.timeIntervalSince1970, workflowID])
        } else {
            try db.execute(sql: "UPDATE workflow SET parked_reason = ? WHERE id = ?", arguments: [reason, workflowID])
        }
        if let line = WorkflowProjection.statusLine(from: old, to: new, reason: reason, cause: cause, stepKey: stepKey, activity: activity) {
            try project(db, workflowID: workflowID, lines: [line], at: now)
        }
        return new
    }

    // MARK: Notes

    public func note(_ note: DeliveryNote, at now: Date) async throws {
        try await write { db in
            let step: Row?
            let workflowID: String
            switch note {
            case .sent(let messageID, _):
                step = try Row.fetchOne(
                    db.cachedStatement(sql: "UPDATE step SET sends = sends + 1, sent_at = ?, last_heard_at = NULL WHERE message_id = ? RETURNING workflow_id, step_key"),
                    arguments: [now.timeIntervalSince1970, messageID]
                )
                guard let step else { return }
                workflowID = step[0]
            case .heard(let messageID, let attempt, let details):
                step = try Row.fetchOne(
                    db.cachedStatement(sql: """
                        UPDATE step SET attempt = ?, last_heard_at = ?, heartbeat = coalesce(?, heartbeat) WHERE message_id = ? AND status IN ('scheduled', 'parked')
                        RETURNING workflow_id, step_key
                        """),
                    arguments: [attempt, now.timeIntervalSince1970, details?.text, messageID]
                )
                guard let step else { return }
                workflowID = step[0]
            case .resumed(let id, _):
                step = nil
                workflowID = id
            }
            if let line = WorkflowProjection.line(for: note, stepKey: step?[1]) {
                try Self.project(db, workflowID: workflowID, lines: [line], at: now)
            }
        }
    }

    // MARK: Reads

    public func step(messageID: String) async throws -> StepRecord? {
        try await database.read { db in try StepRow.fetchOne(db, key: messageID)?.record() }
    }

    public func steps(workflowID: String) async throws -> [StepRecord] {
        try await database.read { db in
            try StepRow.filter(Column("workflow_id") == workflowID).order(Column("position"), Column("message_id")).fetchAll(db).map { try $0.record() }
        }
    }

    public func dueTimers(until: Date, limit: Int) async throws -> [DueTimer] {
        try await database.read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT timer.workflow_id, timer.position, timer.timer_key, timer.fire_at FROM timer JOIN workflow ON workflow.id = timer.workflow_id
                    WHERE timer.fired = 0 AND timer.fire_at <= ? AND workflow.status IN ('running', 'parked')
                    ORDER BY timer.fire_at, timer.workflow_id, timer.position LIMIT ?
                    """,
                arguments: [until.timeIntervalSince1970, max(0, limit)]
            ).map { DueTimer(workflowID: $0[0], position: $0[1], key: $0[2], fireAt: Date(timeIntervalSince1970: $0[3])) }
        }
    }
}
