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

    public func updateSchedule(_ schedule: ScheduleRecord) async throws {
        try await write { db in
            guard try ScheduleRow.exists(db, key: schedule.name) else { return }
            try ScheduleRow(schedule).update(db)
        }
    }
}
