import FlowCoordinator
import FlowCore
import Foundation
import Testing

/// SQLite's group commit: writers that wait share a commit, and each keeps its own outcome.
@Suite("group commit")
struct GroupCommitTests {
    static let at = Date(timeIntervalSince1970: 1_800_000_000)

    func store(groupCommit: Bool) throws -> SQLiteWorkflowStore {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-group-\(UUID().uuidString.prefix(8))")
        return try SQLiteWorkflowStore(path: folder.appendingPathComponent("workflows.sqlite").path, groupCommit: groupCommit)
    }

    /// 400 workflows started at once, then each appended to, half of the appends fenced out.
    func race(_ store: SQLiteWorkflowStore) async throws -> [Bool] {
        let ids = (0..<400).map { "w\($0)" }
        try await withThrowingDiscardingTaskGroup { group in
            for id in ids { group.addTask { _ = try await store.create(WorkflowStart(id: id, name: "counted", input: .emptyObjectForTests), epoch: 2, at: Self.at) } }
        }
        return await withTaskGroup(of: Bool.self) { group in
            for (index, id) in ids.enumerated() {
                group.addTask {
                    do {
                        try await store.append([.cancelRequested(reason: "r")], to: id, expectedSequence: 1, epoch: index.isMultiple(of: 2) ? 2 : 1, at: Self.at)
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }

    @Test("writes that wait for a commit share the next one, and a refused write in a batch rolls back alone")
    func batches() async throws {
        let store = try store(groupCommit: true)
        let outcomes = try await race(store)
        #expect(outcomes.filter { $0 }.count == 200)
        let statistics = store.commitStatistics
        #expect(statistics.writes == 800)
        #expect(statistics.commits < statistics.writes, "some writes shared a commit: \(statistics)")
        #expect(statistics.largestBatch > 1)
        #expect(try await store.countWorkflows(matching: WorkflowFilter()) == 400)
        let cancelled = try await store.workflows(matching: WorkflowFilter(), after: nil, limit: 1000).filter(\.cancelRequested)
        #expect(cancelled.count == 200, "the fenced half changed nothing")
        #expect(try await store.journal(workflowID: "w1").count == 1)
        #expect(try await store.journal(workflowID: "w0").count == 2)
    }

    @Test("without group commit every write is a commit of its own, with the same outcomes")
    func withoutGroupCommit() async throws {
        let store = try store(groupCommit: false)
        #expect(try await race(store).filter { $0 }.count == 200)
        #expect(store.commitStatistics.commits == 0 && store.commitStatistics.writes == 0)
    }
}
