import FlowCore
import FlowRuntime
import Foundation
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
