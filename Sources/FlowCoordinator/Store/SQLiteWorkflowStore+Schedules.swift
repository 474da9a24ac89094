import FlowCore
import Foundation
import GRDB

extension SQLiteWorkflowStore {
    // MARK: Schedules

    public func upsertSchedule(_ schedule: ScheduleRecord) async throws {
        try await write { db in
            var row = ScheduleRow(schedule)
            if let existing = try ScheduleRow.fetchOne(db, key: schedule.name) {
                row.lastRunAt = existing.lastRunAt
                row.runs = existing.runs
                row.lastWorkflowID = existing.lastWorkflowID
                row.buffered = existing.buffered
                row.skipped = existing.skipped
                try row.update(db)
            } else {
                try row.insert(db)
            }
        }
    }

    public func removeSchedule(name: String) async throws -> Bool {
        try await write { db in try ScheduleRow.deleteOne(db, key: name) }
    }

    public func schedules() async throws -> [ScheduleRecord] {
        try await database.read { db in try ScheduleRow.order(Column("name")).fetchAll(db).map { try $0.record() } }
    }

    public func recordScheduleState(_ schedule: ScheduleRecord) async throws {
        let row = ScheduleRow(schedule)
        try await write { db in
            try db.execute(
                sql: "UPDATE schedule SET next_run_at = ?, last_run_at = ?, runs = ?, last_workflow_id = ?, buffered = ?, skipped = ? WHERE name = ?",
                // Times as the records keep them: seconds since 1970.
                arguments: [row.nextRunAt.timeIntervalSince1970, row.lastRunAt?.timeIntervalSince1970, row.runs, row.lastWorkflowID, row.buffered, row.skipped, row.name]
            )
        }
    }

    public func setSchedulePaused(name: String, paused: Bool, note: String?) async throws -> ScheduleRecord? {
        try await write { db in
            try db.execute(sql: "UPDATE schedule SET paused = ?, pause_note = ? WHERE name = ?", arguments: [paused, paused ? note : nil, name])
            return try ScheduleRow.fetchOne(db, key: name)?.record()
        }
    }
}
