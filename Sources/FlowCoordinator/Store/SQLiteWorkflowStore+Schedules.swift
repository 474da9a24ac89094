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

    public func recordScheduleRun(name: String, runAt: Date, nextRunAt: Date) async throws {
        try await write { db in
            guard var row = try ScheduleRow.fetchOne(db, key: name) else { return }
            row.lastRunAt = runAt
            row.nextRunAt = nextRunAt
            row.runs += 1
            try row.update(db)
        }
    }
}
