import FlowCoordinator
import Foundation
import Logging
import ServiceLifecycle

/// Keeps a coordinator's leases on a shared PostgreSQL store, beside the coordinator in its
/// service group.
///
/// Coordinators on one store run **active and standby**: the active one holds every
/// partition (``PostgresWorkflowStore/Share/all``) and drives every workflow; the others
/// wait in ``acquire(store:name:ttl:logger:)`` and take everything over once the active
/// one's leases expire, by the server's clock. The active one renews every third of the
/// lease. When a renewal finds a lease gone, or none has succeeded for a whole lease (its
/// connection cut, the server unreachable, a renewal stuck on a lock), it can no longer show it holds the store, so
/// ``run()`` throws: the group shuts the coordinator down, which suspends its workflows and
/// stops consuming, and the process exits with the reason, to come back as a standby.
/// Writes it tries meanwhile are refused by the fence (``WorkflowStoreError/Code/staleEpoch``).
public final class CoordinatorLeaseKeeper: Service {
    public let store: PostgresWorkflowStore
    public let session: PostgresWorkflowStore.Session
    public let ttl: Duration
    private let logger: Logger

    private init(store: PostgresWorkflowStore, session: PostgresWorkflowStore.Session, ttl: Duration, logger: Logger) {
        self.store = store
        self.session = session
        self.ttl = ttl
        self.logger = logger
    }

    /// Registers a session and waits until it holds every partition: at once when no
    /// coordinator holds the store, else when the active one's leases expire.
    ///
    /// The keeper has connections of its own to the store at `location`, apart from the
    /// coordinator's: a coordinator whose every connection is busy retrying writes (just
    /// woken from a pause, say) still renews, or learns it has lost, on time.
    public static func acquire(location: PostgresStoreLocation, name: String, ttl: Duration, logger: Logger) async throws -> CoordinatorLeaseKeeper {
        let store = try await PostgresWorkflowStore.open(location, maximumConnections: 2, logger: logger)
        do {
            return try await acquire(store: store, name: name, ttl: ttl, logger: logger)
        } catch {
            await store.close()
            throw error
        }
    }

    private static func acquire(store: PostgresWorkflowStore, name: String, ttl: Duration, logger: Logger) async throws -> CoordinatorLeaseKeeper {
        let session = try await store.registerSession(name: name, ttl: ttl)
        var held: Set<Int> = []
        var announced = false
        while true {
            try Task.checkCancellation()
            do {
                held = try await store.renewLeases(session, holding: held, share: .all, ttl: ttl).held
            } catch {
                // The server restarting, a connection cut: a standby waits it out.
                logger.warning("could not ask the store for its leases; trying again", metadata: ["error": "\(error)"])
                try await Task.sleep(for: ttl / 3)
                continue
            }
            if held.count == session.partitions { break }
            if !announced {
                let holders = Set(try await store.leaseHolders().values.compactMap { $0.owner }).sorted()
                logger.info("standing by: another coordinator holds the store; taking over when its leases expire", metadata: [
                    "store.holders": "\(holders.joined(separator: ","))", "lease.seconds": "\(ttl)",
                ])
                announced = true
            }
            try await Task.sleep(for: ttl / 3)
        }
        logger.info("holds the store's leases", metadata: ["coordinator.epoch": "\(session.epoch)", "store.partitions": "\(session.partitions)"])
        return CoordinatorLeaseKeeper(store: store, session: session, ttl: ttl, logger: logger)
    }

    /// The leases could no longer be shown to be this coordinator's.
    public struct LeaseLost: Error, CustomStringConvertible {
        public var description: String
    }

    public func run() async throws {
        var lastRenewed = ContinuousClock.now
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await Task.sleep(for: ttl / 3)
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            do {
                // A renewal that has had no answer for a whole lease is given up: the leases
                // may be another's by then. One that answers late still counts (the server
                // renewed when it ran it), so a slow store, or a starved machine, is not
                // taken for a lost lease: with a deadline at the lease's end, a full test
                // suite on two cores made coordinators give up leases they still held.
                guard let leases = try await renewal(answeringBy: .now + ttl) else {
                    throw LeaseLost(description: "coordinator \(session.name) (epoch \(session.epoch)) had no answer to its lease renewal within its lease of \(ttl) (the store is slow, locked or unreachable): the leases may be another's now; stopping, to come back as a standby")
                }
                guard leases.lost.isEmpty else {
                    throw LeaseLost(description: "coordinator \(session.name) (epoch \(session.epoch)) lost its lease on partitions \(leases.lost.sorted()) of the store: another coordinator drives their workflows now; stopping, to come back as a standby")
                }
                lastRenewed = .now
            } catch let lost as LeaseLost {
                logger.error("lost the store's leases; stopping acting on its workflows", metadata: ["error": "\(lost)"])
                // Not awaited: a renewal that never answered may hold the pool's close up.
                let store = self.store
                Task { await store.close() }
                throw lost
            } catch {
                logger.warning("could not renew the store's leases; retrying", metadata: ["error": "\(error)"])
                if ContinuousClock.now - lastRenewed >= ttl {
                    let lost = LeaseLost(description: "coordinator \(session.name) (epoch \(session.epoch)) could not renew its leases for \(ttl) (\(error)): they may be another's now; stopping, to come back as a standby")
                    logger.error("lost the store's leases; stopping acting on its workflows", metadata: ["error": "\(lost)"])
                    await store.close()
                    throw lost
                }
            }
        }
        // A coordinator that stops hands its leases back, so a standby takes over at once.
        try? await store.endSession(session)
        await store.close()
    }

    /// Renews every lease, or gives nil when the store has not answered by `deadline`: a
    /// query stuck on a lock or a dead connection cannot hold the keeper past its lease.
    private func renewal(answeringBy deadline: ContinuousClock.Instant) async throws -> PostgresWorkflowStore.Leases? {
        let (store, session, ttl) = (self.store, self.session, self.ttl)
        return try await answer(by: deadline) { try await store.renewLeases(session, holding: Set(0..<session.partitions), share: .all, ttl: ttl) }
    }
}
