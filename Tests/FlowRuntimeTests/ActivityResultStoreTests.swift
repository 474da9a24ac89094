import FlowCore
import FlowRuntime
import Foundation
import GRDB
import Testing

@Suite("the activity store")
struct ActivityResultStoreTests {
    private func temporaryStore() throws -> (ActivityResultStore, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-store-\(UUID().uuidString.prefix(8))")
        return (try ActivityResultStore(path: folder.appendingPathComponent("store.sqlite").path), folder)
    }

    @Test("completions recorded at once from many tasks are all stored, each with its own reply")
    func concurrentCompletions() async throws {
        let (store, folder) = try temporaryStore()
        defer { try? FileManager.default.removeItem(at: folder) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<400 {
                group.addTask {
                    let reply = ActivityReply(status: .completed, activity: "a", messageID: "m-\(index)", attempt: 1, output: try JSONText(validating: "{\"n\": \(index)}"))
                    try await store.recordCompletion(reply)
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.completedCount() == 400)
        for index in [0, 199, 399] {
            #expect(try await store.completedReply(messageID: "m-\(index)")?.output?.text == "{\"n\":\(index)}")
        }
    }

    @Test("the store keeps at most its maximum number of entries, dropping the oldest")
    func bounded() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-store-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try ActivityResultStore(path: folder.appendingPathComponent("store.sqlite").path, maximumEntries: 10)
        for index in 0..<25 {
            try await store.recordCompletion(ActivityReply(status: .completed, activity: "a", messageID: "m-\(index)", attempt: 1))
        }
        try await store.prune()
        #expect(try await store.completedCount() == 10)
        #expect(try await store.completedReply(messageID: "m-24") != nil)
        #expect(try await store.completedReply(messageID: "m-0") == nil)
    }
}

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
