import FlowCoordinator
import FlowCore
import FlowPostgres
import FlowTesting
import PostgresNIO
import Foundation
import Synchronization
import Testing

/// Coordinators sharing one PostgreSQL store: sessions, partition leases, and the fence
/// that keeps a coordinator that lost a lease from writing.
@Suite("partition leases on a shared PostgreSQL store")
struct PostgresLeaseTests {
    static let at = Date(timeIntervalSince1970: 1_800_000_000)
    static let input = try! JSONText(validating: #"{"value":"a"}"#)

    static func store() async throws -> PostgresWorkflowStore {
        try await PostgresWorkflowStore.open(try await TestPostgres.newDatabase(), maximumConnections: 4, logger: TestPostgres.logger)
    }

    static func start(_ id: String, in store: PostgresWorkflowStore, epoch: Int64) async throws -> WorkflowStartOutcome {
        try await store.create(WorkflowStart(id: id, name: "counted", input: input), epoch: epoch, at: at)
    }

    /// Appends a marker to `id` under `epoch`: whether the fence let it through.
    static func writes(_ id: String, in store: PostgresWorkflowStore, epoch: Int64) async throws -> Bool {
        let last = try await store.journal(workflowID: id).last!.sequence
        do {
            try await store.append([.markerRecorded(position: Int(last), name: "m", value: input)], to: id, expectedSequence: last, epoch: epoch, at: at)
            return true
        } catch let error as WorkflowStoreError where error.code == .staleEpoch {
            return false
        }
    }

    @Test("the first coordinator takes every partition; a second takes half once the first hands them back; each writes only its own partitions' workflows")
    func partitionsSpreadAndFence() async throws {
        let store = try await Self.store()
        let a = try await store.registerSession(name: "a", ttl: .seconds(30))
        let b = try await store.registerSession(name: "b", ttl: .seconds(30))
        #expect(b.epoch > a.epoch, "each session has an epoch none had before")
        // Both registered, but b has not renewed yet: a sees two sessions and takes its half.
        let first = try await store.renewLeases(a, holding: [], ttl: .seconds(30))
        #expect(first.held.count == a.partitions / 2 && first.acquired == first.held && first.sessions == 2)
        let second = try await store.renewLeases(b, holding: [], ttl: .seconds(30))
        #expect(second.held == Set(0..<b.partitions).subtracting(first.held), "b takes the rest: \(second)")

        var checked = 0
        for index in 0..<32 {
            let id = "w-\(index)"
            // The holder of the partition creates it; the other is refused, creating nothing.
            var creators: [String] = []
            for session in [a, b] {
                do {
                    if case .created = try await Self.start(id, in: store, epoch: session.epoch) { creators.append(session.name) }
                } catch let error as WorkflowStoreError where error.code == .staleEpoch {}
            }
            #expect(creators.count == 1, "\(id) created by \(creators)")
            let partition = try #require(try await store.partition(of: id))
            let holder = first.held.contains(partition) ? a : b
            let other = holder == a ? b : a
            #expect(try await Self.writes(id, in: store, epoch: holder.epoch))
            #expect(try await !Self.writes(id, in: store, epoch: other.epoch), "\(other.name) wrote to \(id) in \(holder.name)'s partition \(partition)")
            checked += 1
        }
        #expect(checked == 32)
        await #expect {
            // An epoch that holds nothing cannot create either.
            try await Self.start("nobody", in: store, epoch: 999)
        } throws: { ($0 as? WorkflowStoreError)?.code == .staleEpoch }
        #expect(try await store.workflow(id: "nobody") == nil)
        await store.close()
    }

    @Test("a lease that is not renewed expires and is taken over under the new holder's epoch; the old holder's writes are refused from then on, and its renewal says what it lost")
    func expiryAndTakeover() async throws {
        let store = try await Self.store()
        let a = try await store.registerSession(name: "a", ttl: .seconds(1))
        let held = try await store.renewLeases(a, holding: [], ttl: .seconds(1)).held
        #expect(held.count == a.partitions, "alone, a holds every partition")
        _ = try await Self.start("w", in: store, epoch: a.epoch)
        #expect(try await Self.writes("w", in: store, epoch: a.epoch))

        // a stops renewing (paused, partitioned away, its connection cut): after the ttl, by
        // the server's clock, b takes everything.
        try await Task.sleep(for: .milliseconds(1500))
        let b = try await store.registerSession(name: "b", ttl: .seconds(30))
        let taken = try await store.renewLeases(b, holding: [], ttl: .seconds(30))
        #expect(taken.held.count == b.partitions && taken.sessions == 1)
        #expect(try await !Self.writes("w", in: store, epoch: a.epoch), "a lost the lease and must not write")
        #expect(try await Self.writes("w", in: store, epoch: b.epoch))
        #expect(try await store.leaseHolders().values.allSatisfy { $0.epoch == b.epoch && $0.owner == "b" })

        // a comes back: it learns it lost everything, and takes nothing b holds.
        let back = try await store.renewLeases(a, holding: held, ttl: .seconds(30))
        #expect(back.lost == held && back.held.isEmpty && back.sessions == 2)
        // Once b renews it hands half back, and a takes it on its next renewal.
        let halved = try await store.renewLeases(b, holding: taken.held, ttl: .seconds(30))
        #expect(halved.held.count == b.partitions / 2 && halved.lost.count == b.partitions / 2)
        let rejoined = try await store.renewLeases(a, holding: [], ttl: .seconds(30))
        #expect(rejoined.acquired == halved.lost)

        try await store.endSession(b)
        let alone = try await store.renewLeases(a, holding: rejoined.held, ttl: .seconds(30))
        #expect(alone.held.count == a.partitions && alone.sessions == 1, "b's end hands its partitions back at once")
        await store.close()
    }

    @Test("standbys that take over at the same moment: one takes every partition and the others none, every time")
    func standbysRaceForEverything() async throws {
        let store = try await Self.store()
        for round in 0..<10 {
            let sessions = try await withThrowingTaskGroup(of: PostgresWorkflowStore.Session.self) { group in
                for name in ["a", "b", "c"] { group.addTask { try await store.registerSession(name: "\(name)-\(round)", ttl: .seconds(30)) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let outcomes = try await withThrowingTaskGroup(of: (PostgresWorkflowStore.Session, Int).self) { group in
                for session in sessions { group.addTask { (session, try await store.renewLeases(session, holding: [], share: .all, ttl: .seconds(30)).held.count) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.map(\.1).sorted() == [0, 0, sessions[0].partitions], "round \(round): \(outcomes.map { "\($0.0.name) \($0.1)" })")
            // Every session ends: the winner's partitions are free for the next round.
            for (session, _) in outcomes { try await store.endSession(session) }
        }
        await store.close()
    }

    @Test("a keeper whose renewal gets no answer within its lease (the lease rows locked by another session) stops, saying so, without waiting for the answer")
    func renewalWithoutAnswer() async throws {
        let location = try await TestPostgres.newDatabase()
        let ttl = Duration.seconds(3)
        let keeper = try await CoordinatorLeaseKeeper.acquire(location: location, name: "a", ttl: ttl, logger: TestPostgres.logger)
        // How the keeper's run ended, once it has.
        let ended = Mutex<String?>(nil)
        let running = Task {
            do {
                try await keeper.run()
                ended.withLock { $0 = "returned" }
            } catch {
                ended.withLock { $0 = "\(type(of: error)): \(error)" }
            }
        }
        // Another session locks every lease row and holds the lock: the next renewal waits on
        // it. (Its connection has no idle-transaction limit, unlike the store's.)
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password, database: location.database, tls: .disable
        )
        let locker = try await PostgresConnection.connect(configuration: configuration, id: 9, logger: TestPostgres.logger)
        try await locker.query("BEGIN", logger: TestPostgres.logger)
        try await locker.query("SELECT partition FROM partition_lease ORDER BY partition FOR UPDATE", logger: TestPostgres.logger)

        // Held for four leases: the keeper must give up within one, while the lock still holds.
        let released = ContinuousClock.now + ttl * 4
        while ContinuousClock.now < released, ended.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(50)) }
        let outcome = ended.withLock { $0 }
        try await locker.query("ROLLBACK", logger: TestPostgres.logger)
        try await locker.close()
        running.cancel()
        #expect(outcome?.hasPrefix("LeaseLost") == true && outcome?.contains("no answer to its lease renewal") == true, "the keeper, after four leases: \(outcome ?? "still waiting on its renewal")")
    }
}
