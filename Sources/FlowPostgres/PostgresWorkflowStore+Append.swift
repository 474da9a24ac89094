import FlowCoordinator
import FlowCore
import Foundation
import PostgresNIO

/// Appending to a journal, and the projections each event changes in the same
/// transaction: the same rules as `SQLiteWorkflowStore+Append.swift`, whose lines and
/// reasons both take from ``WorkflowProjection``.
extension PostgresWorkflowStore {
    @discardableResult
    public func append(_ events: [WorkflowEvent], to workflowID: String, expectedSequence: Int64, epoch: Int64, at now: Date) async throws -> [JournalEntry] {
        let payloads = try events.map { try $0.payloadText() }
        return try await transaction("append to the journal of workflow \(workflowID)") { connection in
            let head = try await self.fence(connection, workflowID: workflowID, expectedSequence: expectedSequence, epoch: epoch)
            var status = head.status
            var entries: [JournalEntry] = []
            for (offset, event) in events.enumerated() {
                let entry = JournalEntry(sequence: expectedSequence + 1 + Int64(offset), epoch: epoch, recordedAt: now, event: event)
                try await connection.query(
                    """
                    INSERT INTO workflow_event (workflow_id, sequence, epoch, kind, position, recorded_at, payload)
                    VALUES (\(workflowID), \(entry.sequence), \(epoch), \(event.kind), \(event.position), \(now), \(payloads[offset]))
                    """, logger: self.logger)
                status = try await self.project(connection, event, of: workflowID, status: status, at: now)
                entries.append(entry)
            }
            try await connection.query(
                "UPDATE workflow SET last_sequence = \(expectedSequence + Int64(events.count)), epoch = \(epoch) WHERE id = \(workflowID)", logger: self.logger)
            return entries
        }
    }

    /// What a write to a workflow checks first, with the workflow's row locked until the
    /// transaction ends.
    struct Head {
        var status: WorkflowStatus
        var run: Int
        var parentID: String?
        var parentPosition: Int?
        var traceContext: String?
        var memo: String?
        var partition: Int
    }

    /// Locks the workflow's row and checks the fence: no newer epoch wrote to it, and its
    /// journal ends at `expectedSequence`.
    func fence(_ connection: PostgresConnection, workflowID: String, expectedSequence: Int64, epoch: Int64) async throws -> Head {
        let row = try await connection.query(
            "SELECT last_sequence, epoch, status, run, parent_id, parent_position, trace_context, memo, partition FROM workflow WHERE id = \(workflowID) FOR UPDATE",
            logger: logger
        ).first { $0 }
        guard let row else { throw WorkflowStoreError(.noSuchWorkflow, "there is no workflow \(workflowID) to write to") }
        let (last, owner): (Int64, Int64) = (try row("last_sequence"), try row("epoch"))
        // Under leases the partition's holder alone writes; without them (one coordinator)
        // the newest epoch that wrote to the workflow does.
        let partition = try row.integer("partition")
        if try await !checkLease(connection, partition: partition, workflowID: workflowID, epoch: epoch) {
            guard epoch >= owner else {
                throw WorkflowStoreError(.staleEpoch, "workflow \(workflowID) is owned under epoch \(owner), newer than this writer's \(epoch): another coordinator took it over")
            }
        }
        guard last == expectedSequence else {
            throw WorkflowStoreError(.sequenceConflict, "workflow \(workflowID)'s journal ends at event \(last), not \(expectedSequence) as this writer read it: read it again")
        }
        return Head(
            status: WorkflowStatus(rawValue: try row("status")) ?? .running, run: try row.integer("run"), parentID: try row("parent_id"),
            parentPosition: try row.optionalInteger("parent_position"), traceContext: try row("trace_context"), memo: try row("memo"), partition: partition
        )
    }

    /// Changes the projections as `event` says, and returns the workflow's status after it.
    func project(_ connection: PostgresConnection, _ event: WorkflowEvent, of workflowID: String, status: WorkflowStatus, at now: Date) async throws -> WorkflowStatus {
        var stepKey: String?
        var activity: String?
        var status = status
        func keyAndActivity(_ query: PostgresQuery) async throws -> (String?, String?) {
            let row = try await connection.query(query, logger: logger).first { (try $0("step_key", as: String.self), try $0("activity", as: String.self)) }
            return (row?.0, row?.1)
        }
        switch event {
        case .activityScheduled(let scheduled):
            try await connection.query(
                """
                INSERT INTO step (message_id, workflow_id, step_key, activity, queue, input, options, status, sends, scheduled_at, attempt, position)
                VALUES (\("\(workflowID)/\(scheduled.stepKey)"), \(workflowID), \(scheduled.stepKey), \(scheduled.activity), \(scheduled.queue),
                    \(scheduled.input.text), \(try WorkflowEvent.optionsText(scheduled.options)), 'scheduled', 0, \(now), 0, \(scheduled.position))
                """, logger: logger)
        case .activityCompleted(let position, let attempt, let output):
            (stepKey, activity) = try await keyAndActivity(answer(workflowID, position, .completed, attempt: attempt, result: output.text, error: nil, at: now))
        case .activityFailed(let position, let attempt, let failure):
            (stepKey, activity) = try await keyAndActivity(answer(workflowID, position, .failed, attempt: attempt, result: nil, error: try FlowJSON.encodeText(failure), at: now))
        case .activityTimedOut(let position, let failure):
            (stepKey, activity) = try await keyAndActivity(answer(workflowID, position, .failed, attempt: nil, result: nil, error: try FlowJSON.encodeText(failure), at: now))
        case .activityParked(let position, let attempt, let failure):
            (stepKey, activity) = try await keyAndActivity(answer(workflowID, position, .parked, attempt: attempt, result: nil, error: try FlowJSON.encodeText(failure), at: now))
        case .activityPaused(let position, _):
            (stepKey, activity) = try await keyAndActivity(
                "UPDATE step SET status = 'paused' WHERE workflow_id = \(workflowID) AND position = \(position) RETURNING step_key, activity")
        case .activityResumed(let position, let key, let resetAttempts):
            // Under its new key: a new message id, sent from scratch.
            (_, activity) = try await keyAndActivity(
                """
                UPDATE step SET message_id = \("\(workflowID)/\(key)"), step_key = \(key), status = 'scheduled', sends = 0, sent_at = NULL, last_heard_at = NULL,
                    error = NULL, attempt = CASE WHEN \(resetAttempts) THEN 0 ELSE attempt END, heartbeat = CASE WHEN \(resetAttempts) THEN NULL ELSE heartbeat END
                WHERE workflow_id = \(workflowID) AND position = \(position) RETURNING step_key, activity
                """)
            stepKey = key
        case .timerStarted(let position, let key, let fireAt):
            try await connection.query(
                "INSERT INTO timer (workflow_id, timer_key, fire_at, fired, position) VALUES (\(workflowID), \(key), \(fireAt), false, \(position))", logger: logger)
        case .timerFired(let position):
            stepKey = try await connection.query(
                "UPDATE timer SET fired = true WHERE workflow_id = \(workflowID) AND position = \(position) RETURNING timer_key", logger: logger
            ).first { try $0("timer_key", as: String.self) }
        case .childCompleted(let position, _), .childFailed(let position, _):
            // The child's id, for the history line, from the command it answers.
            let payload = try await connection.query(
                "SELECT payload FROM workflow_event WHERE workflow_id = \(workflowID) AND position = \(position) AND kind = 'child_scheduled'", logger: logger
            ).first { try $0("payload", as: String.self) }
            if let payload, case .childScheduled(let child)? = try? FlowJSON.decode(WorkflowEvent.self, from: payload) { stepKey = child.workflowID }
        case .cancelRequested:
            try await connection.query("UPDATE workflow SET cancel_requested = true, updated_at = \(now) WHERE id = \(workflowID)", logger: logger)
        case .replayDiverged(let reason):
            try await connection.query("UPDATE workflow SET divergence = \(reason) WHERE id = \(workflowID)", logger: logger)
        case .replayRecovered:
            try await connection.query("UPDATE workflow SET divergence = NULL WHERE id = \(workflowID)", logger: logger)
        case .workflowCompleted(let output):
            try await end(connection, workflowID, .completed, output: output.text, error: nil, at: now)
            status = .completed
        case .workflowFailed(let failure):
            try await end(connection, workflowID, .failed, output: nil, error: try FlowJSON.encodeText(failure), at: now)
            status = .failed
        case .workflowCancelled(let failure):
            try await end(connection, workflowID, .cancelled, output: nil, error: try FlowJSON.encodeText(failure), at: now)
            status = .cancelled
        case .workflowContinuedAsNew:
            try await end(connection, workflowID, .continuedAsNew, output: nil, error: nil, at: now)
            status = .continuedAsNew
        case .workflowReset(let position, let reason):
            let failure = ActivityFailure.cancelled("reset to before command \(position): \(reason)")
            try await end(connection, workflowID, .reset, output: nil, error: try FlowJSON.encodeText(failure), at: now)
            status = .reset
        case .markerRecorded(_, WorkflowProjection.searchAttributesMarker, let value):
            try await fileSearchAttributes(connection, workflowID, WorkflowProjection.searchAttributeChanges(value))
        case .markerRecorded(_, WorkflowProjection.memoMarker, let value):
            try await patchMemo(connection, workflowID, with: value)
        case .workflowStarted, .markerRecorded, .signalReceived, .updateAccepted, .updateCompleted, .childScheduled, .workflowPaused, .workflowUnpaused, .unrecognized:
            break
        }
        try await project(connection, workflowID: workflowID, lines: WorkflowProjection.lines(for: event, stepKey: stepKey), at: now)
        // A park, a divergence, or an answer to a step of a parked workflow: the status and
        // its reason follow from what is parked now.
        if !status.isFinished, WorkflowProjection.touchesPark(event) || (status == .parked && activity != nil) {
            status = try await refreshPark(connection, workflowID, from: status, cause: event, stepKey: stepKey, activity: activity, at: now)
        }
        return status
    }

    /// The statement that records an answer on its step's row, returning its key and activity.
    private func answer(_ workflowID: String, _ position: Int, _ status: StepStatus, attempt: Int?, result: String?, error: String?, at now: Date) -> PostgresQuery {
        """
        UPDATE step SET status = \(status.rawValue), attempt = coalesce(\(attempt), attempt), result = coalesce(\(result), result),
            error = coalesce(\(error), error), last_heard_at = \(now)
        WHERE workflow_id = \(workflowID) AND position = \(position) RETURNING step_key, activity
        """
    }

    private func end(_ connection: PostgresConnection, _ workflowID: String, _ status: WorkflowStatus, output: String?, error: String?, at now: Date) async throws {
        try await connection.query(
            """
            UPDATE workflow SET status = \(status.rawValue), output = \(output), error = \(error), parked_reason = NULL, updated_at = \(now), finished_at = \(now)
            WHERE id = \(workflowID)
            """, logger: logger)
        let abandoned = try FlowJSON.encodeText(WorkflowProjection.abandonedStepError(status))
        try await connection.query(
            "UPDATE step SET status = 'cancelled', error = \(abandoned) WHERE workflow_id = \(workflowID) AND status IN ('scheduled', 'parked', 'paused')", logger: logger)
    }

    /// Sets (or, for nil, removes) a workflow's search attributes, each kept as
    /// ``WorkflowProjection/storedAttribute(_:)`` says.
    private func fileSearchAttributes(_ connection: PostgresConnection, _ workflowID: String, _ changes: [String: SearchAttribute?]) async throws {
        for (key, value) in changes.sorted(by: { $0.key < $1.key }) {
            let (text, number) = WorkflowProjection.storedAttribute(value)
            if value == nil {
                try await connection.query("DELETE FROM workflow_attribute WHERE workflow_id = \(workflowID) AND key = \(key)", logger: logger)
            } else {
                try await connection.query(
                    """
                    INSERT INTO workflow_attribute (workflow_id, key, text_value, number_value) VALUES (\(workflowID), \(key), \(text), \(number))
                    ON CONFLICT (workflow_id, key) DO UPDATE SET text_value = excluded.text_value, number_value = excluded.number_value
                    """, logger: logger)
            }
        }
    }

    /// Applies a memo marker's merge patch: its keys replace the memo's, a null removes
    /// one. Done here rather than in SQL so that the memo's text is written as every other
    /// store writes it (``FlowJSON``), whichever store a workflow moved from.
    private func patchMemo(_ connection: PostgresConnection, _ workflowID: String, with patch: JSONText) async throws {
        let current = try await connection.query("SELECT memo FROM workflow WHERE id = \(workflowID)", logger: logger).first { try $0("memo", as: String?.self) }
        var memo = try (current ?? nil).map { try JSONText(storedText: $0).decode([String: JSONValue].self) } ?? [:]
        for (key, change) in try patch.decode([String: JSONValue].self) {
            if change == .null { memo[key] = nil } else { memo[key] = change }
        }
        let text = try JSONText(encoding: JSONValue.object(memo)).text
        try await connection.query("UPDATE workflow SET memo = \(text) WHERE id = \(workflowID)", logger: logger)
    }

    /// Sets the status and parked reason that follow from the workflow's divergence and
    /// parked steps (the rule ``WorkflowJournal/status`` holds), with a line when it changes.
    private func refreshPark(
        _ connection: PostgresConnection, _ workflowID: String, from old: WorkflowStatus, cause: WorkflowEvent, stepKey: String?, activity: String?, at now: Date
    ) async throws -> WorkflowStatus {
        var reason = try await connection.query("SELECT divergence FROM workflow WHERE id = \(workflowID)", logger: logger).first { try $0("divergence", as: String?.self) } ?? nil
        if reason == nil, let parked = try await connection.query(
            "SELECT activity, step_key, error FROM step WHERE workflow_id = \(workflowID) AND status = 'parked' ORDER BY position LIMIT 1", logger: logger
        ).first({ $0 }) {
            let failure = try parked.failure("error") ?? .nonRetryable(.unknown, "no error was recorded")
            reason = WorkflowProjection.parkedReason(workflowID: workflowID, activity: try parked("activity"), stepKey: try parked("step_key"), failure: failure)
        }
        let new: WorkflowStatus = reason == nil ? .running : .parked
        if new != old {
            try await connection.query(
                "UPDATE workflow SET status = \(new.rawValue), parked_reason = \(reason), updated_at = \(now) WHERE id = \(workflowID)", logger: logger)
        } else {
            try await connection.query("UPDATE workflow SET parked_reason = \(reason) WHERE id = \(workflowID)", logger: logger)
        }
        if let line = WorkflowProjection.statusLine(from: old, to: new, reason: reason, cause: cause, stepKey: stepKey, activity: activity) {
            try await project(connection, workflowID: workflowID, lines: [line], at: now)
        }
        return new
    }
}
