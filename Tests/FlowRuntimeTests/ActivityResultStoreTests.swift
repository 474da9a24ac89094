import FlowCore
import FlowRuntime
import Foundation
import GRDB
import Testing

@Suite("activity store migrations")
struct ActivityResultStoreMigrationTests {
    @Test("a store written before its schema was versioned migrates in place and answers from its records")
    func oldStoreMigrates() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-store-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("store.sqlite").path
        // The tables and rows as the store wrote them before it recorded migrations.
        let reply = #"{"activity":"a","attempt":1,"message_id":"old","output":{"n":1},"protocol":1,"status":"completed"}"#
        let database = try DatabaseQueue(path: path)
        try await database.write { db in
            try db.execute(sql: """
                CREATE TABLE completed_activity (message_id TEXT PRIMARY KEY, activity TEXT NOT NULL, reply TEXT NOT NULL, completed_at REAL NOT NULL);
                CREATE INDEX completed_activity_time ON completed_activity(completed_at);
                CREATE TABLE activity_heartbeat (message_id TEXT PRIMARY KEY, details TEXT NOT NULL, updated_at REAL NOT NULL);
                """)
            try db.execute(sql: "INSERT INTO completed_activity VALUES ('old', 'a', ?, ?)", arguments: [reply, Date().timeIntervalSince1970])
            try db.execute(sql: "INSERT INTO activity_heartbeat VALUES ('running', '{\"step\":5}', ?)", arguments: [Date().timeIntervalSince1970])
        }
        try database.close()

        let store = try ActivityResultStore(path: path)
        #expect(try store.appliedMigrations() == ["v1: completed activities and heartbeats"])
        #expect(try await store.completedReply(messageID: "old")?.output?.text == #"{"n":1}"#)
        #expect(try await store.lastHeartbeat(messageID: "running")?.text == #"{"step":5}"#)
        try await store.recordCompletion(ActivityReply(status: .completed, activity: "a", messageID: "running", attempt: 2))
        #expect(try await store.lastHeartbeat(messageID: "running") == nil, "a completion clears the heartbeat")
        #expect(try await store.completedCount() == 2)
    }
}
