import FlowOpenAI
import FlowPostgres
import FlowTesting
import Foundation
import Synchronization
import Testing

/// One contract for every OpenAI spend book: the SQLite file copies on one host share, and
/// the PostgreSQL database copies on several hosts share. Each subject opens the book twice,
/// as two copies of the actor would.
@Suite("the OpenAI spend book contract")
struct SpendStoreConformance {
    enum Subject: String, CaseIterable, CustomTestStringConvertible {
        case sqliteFile = "a SQLite file on a shared volume"
        case postgres = "PostgreSQL"

        var testDescription: String { rawValue }

        /// Two openings of one new book, and how to close them.
        func open() async throws -> (any SpendStore, any SpendStore, close: @Sendable () async -> Void) {
            switch self {
            case .sqliteFile:
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("flow-spend-\(UUID().uuidString.prefix(8))/spend.sqlite").path
                return (try SpendBook(path: path), try SpendBook(path: path), {
                    try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path)
                })
            case .postgres:
                let location = try await TestPostgres.newDatabase()
                let first = try await PostgresSpendBook.open(location, logger: TestPostgres.logger)
                let second = try await PostgresSpendBook.open(location, logger: TestPostgres.logger)
                return (first, second, {
                    await first.close()
                    await second.close()
                })
            }
        }
    }

    @Test("a booking counts at its estimate until settled at its cost, by day and by model; at the budget nothing more is booked, and the refusal says what was spent", arguments: Subject.allCases)
    func bookSettleRefuse(subject: Subject) async throws {
        let (book, other, close) = try await subject.open()
        #expect(try await book.book(id: "a", day: "2026-12-07", model: "m1", estimateUSD: 2, budgetUSD: 5) == 2)
        #expect(try await other.book(id: "b", day: "2026-12-07", model: "m2", estimateUSD: 2, budgetUSD: 5) == 4, "the other copy sees the first booking")
        #expect(try await other.book(id: "c", day: "2026-12-08", model: "m1", estimateUSD: 4, budgetUSD: 5) == 4, "another day has its own budget")
        #expect(try await book.openBookings(day: "2026-12-07") == 2)
        try await other.settle(id: "a", costUSD: 0.5)
        #expect(try await book.spent(day: "2026-12-07") == 2.5)
        #expect(try await book.openBookings(day: "2026-12-07") == 1)
        #expect(try await book.spentByModel(day: "2026-12-07") == ["m1": 0.5, "m2": 2])
        // 2.5 spent of 5: one more call fits, whatever its estimate; then none.
        #expect(try await book.book(id: "d", day: "2026-12-07", model: "m1", estimateUSD: 3, budgetUSD: 5) == 5.5)
        await #expect { try await other.book(id: "e", day: "2026-12-07", model: "m1", estimateUSD: 0.01, budgetUSD: 5) } throws: {
            ($0 as? SpendRefusal)?.spentUSD == 5.5
        }
        #expect(try await book.openBookings(day: "2026-12-07") == 2, "a refused call is not booked")
        #expect(try await book.book(id: "f", day: "2026-12-07", model: "m1", estimateUSD: 1, budgetUSD: nil) == 6.5, "without a budget every call is booked")
        await close()
    }

    @Test("two copies booking at once under a budget of 10 calls book exactly 10 between them", arguments: Subject.allCases)
    func concurrentBookings(subject: Subject) async throws {
        let (book, other, close) = try await subject.open()
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                let copy = index.isMultiple(of: 2) ? book : other
                group.addTask {
                    do {
                        _ = try await copy.book(id: "call-\(index)", day: "2026-12-07", model: "m", estimateUSD: 1, budgetUSD: 10)
                        return true
                    } catch is SpendRefusal {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 10)
        #expect(try await other.spent(day: "2026-12-07") == 10)
        await close()
    }
}
