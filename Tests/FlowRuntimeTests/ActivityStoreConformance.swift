import FlowCore
import FlowPostgres
import FlowRuntime
import FlowTesting
import Foundation
import Testing

/// One suite every ``ActivityStore`` passes: SQLite in a data folder, and PostgreSQL shared
/// by copies on several hosts.
@Suite("the activity store contract")
struct ActivityStoreConformance {
    struct Subject: Sendable, CustomTestStringConvertible {
        var name: String
        /// A new, empty store keeping at most `maximumEntries` completions.
        var open: @Sendable (_ maximumEntries: Int) async throws -> any ActivityStore
        var testDescription: String { name }

        static let sqlite = Subject(name: "SQLite") { maximumEntries in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-store-\(UUID().uuidString.prefix(8))")
            return try ActivityResultStore(path: folder.appendingPathComponent("store.sqlite").path, maximumEntries: maximumEntries)
        }
        static let postgres = Subject(name: "PostgreSQL") { maximumEntries in
            try await PostgresActivityStore.open(try await TestPostgres.newDatabase(), maximumEntries: maximumEntries, logger: TestPostgres.logger)
        }
        static let all = [sqlite, postgres]
    }

    @Test("completions recorded at once from many tasks are all stored, each with its own reply", arguments: Subject.all)
    func concurrentCompletions(_ subject: Subject) async throws {
        let store = try await subject.open(100_000)
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
        #expect(try await store.completedReply(messageID: "never") == nil)
    }

    @Test("a completion replaces one of the same message id and clears its heartbeat; heartbeats keep the last details", arguments: Subject.all)
    func heartbeatsAndReplacement(_ subject: Subject) async throws {
        let store = try await subject.open(100)
        try await store.recordHeartbeat(messageID: "m", details: try JSONText(validating: #"{"step":1}"#))
        try await store.recordHeartbeat(messageID: "m", details: try JSONText(validating: #"{"step":5}"#))
        #expect(try await store.lastHeartbeat(messageID: "m")?.text == #"{"step":5}"#)
        try await store.recordCompletion(ActivityReply(status: .completed, activity: "a", messageID: "m", attempt: 1, output: try JSONText(validating: "1")))
        #expect(try await store.lastHeartbeat(messageID: "m") == nil, "a completion clears the heartbeat")
        try await store.recordCompletion(ActivityReply(status: .completed, activity: "a", messageID: "m", attempt: 2, output: try JSONText(validating: "2")))
        #expect(try await store.completedReply(messageID: "m")?.attempt == 2)
        #expect(try await store.completedCount() == 1)
    }

    @Test("the store keeps at most its maximum number of entries, dropping the oldest", arguments: Subject.all)
    func bounded(_ subject: Subject) async throws {
        let store = try await subject.open(10)
        for index in 0..<25 {
            try await store.recordCompletion(ActivityReply(status: .completed, activity: "a", messageID: "m-\(index)", attempt: 1))
        }
        try await store.prune()
        #expect(try await store.completedCount() == 10)
        #expect(try await store.completedReply(messageID: "m-24") != nil)
        #expect(try await store.completedReply(messageID: "m-0") == nil)
    }
}
