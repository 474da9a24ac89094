import FlowCoordinator
import Foundation
import PostgresNIO

/// Coordinators that share one store divide its workflows by partition and hold a lease on
/// each partition they drive, as Temporal's history shards carry a `range_id`.
///
/// - Each coordinator process registers a **session** and gets an epoch no session had
///   before (a sequence), which every one of its writes carries.
/// - A **lease** names the epoch that holds a partition and until when, by the server's
///   clock: the only clock read, so no two coordinators' clocks need agree.
/// - **The fence**: once leases exist, a write to a workflow locks its partition's lease row
///   (`FOR SHARE`) and goes through only under the epoch that holds it. A takeover changes
///   the lease row, so it waits for writes under the old epoch to commit, and every later
///   one is refused with ``WorkflowStoreError/Code/staleEpoch``. A coordinator that lost a
///   lease cannot write to the partition, whatever its own clock says.
/// - Leases expire when their holder stops renewing; partitions spread evenly over the
///   sessions alive (``renewLeases(_:holding:ttl:)``), so they move when coordinators join or leave.
extension PostgresWorkflowStore {
    /// A coordinator process's registration.
    public struct Session: Sendable, Equatable {
        /// The epoch every write of this process carries.
        public var epoch: Int64
        public var name: String
        /// How many partitions the store has.
        public var partitions: Int
    }

    /// What a coordinator holds after a renewal, and what changed.
    public struct Leases: Sendable, Equatable {
        /// The partitions this session holds now.
        public var held: Set<Int>
        /// Taken in this renewal: their workflows are this session's to load and drive.
        public var acquired: Set<Int>
        /// Held before and not now (expired and taken, or handed back to even out the load):
        /// this session must stop driving their workflows.
        public var lost: Set<Int>
        /// Sessions alive, this one among them.
        public var sessions: Int
    }

    /// Registers a coordinator process and sets up the leases when it is the first.
    public func registerSession(name: String, ttl: Duration) async throws -> Session {
        try await transaction("register coordinator \(name)") { connection in
            let partitions = try await connection.query("SELECT value::integer AS count FROM flow_setting WHERE key = 'partitions'", logger: self.logger)
                .first { try $0.integer("count") } ?? Self.defaultPartitions
            try await connection.query(
                """
                INSERT INTO partition_lease (partition, epoch, owner, expires_at)
                SELECT partition, 0, NULL, '-infinity' FROM generate_series(0, \(partitions - 1)) AS partition ON CONFLICT DO NOTHING
                """, logger: self.logger)
            let epoch = try await connection.query(
                "INSERT INTO coordinator_session (epoch, name, expires_at) VALUES (nextval('coordinator_epoch'), \(name), now() + \(Self.interval(ttl))::interval) RETURNING epoch",
                logger: self.logger
            ).first { try $0("epoch", as: Int64.self) }
            guard let epoch else { throw WorkflowStoreError(.unavailable, "coordinator \(name) was not registered") }
            return Session(epoch: epoch, name: name, partitions: partitions)
        }
    }

    /// Renews this session and its leases for `ttl`, hands back what is over its fair share
    /// (the partitions divided by the sessions alive, rounded up), and takes expired or
    /// unheld ones up to it. Called more often than `ttl` (a third of it, say).
    ///
    /// `holding` is what the caller drives now; what it holds after, and how that differs,
    /// comes back.
    /// How many partitions a session aims to hold.
    public enum Share: Sendable {
        /// The partitions divided by the sessions alive, rounded up: coordinators that share
        /// the work.
        case fair
        /// Every one: one coordinator drives all workflows and the others stand by, each
        /// taking everything over when the active one's leases expire.
        case all
    }

    public func renewLeases(_ session: Session, holding before: Set<Int>, share: Share = .fair, ttl: Duration) async throws -> Leases {
        let interval = Self.interval(ttl)
        return try await transaction("renew the leases of coordinator \(session.name)") { connection in
            try await connection.query(
                "UPDATE coordinator_session SET expires_at = now() + \(interval)::interval WHERE epoch = \(session.epoch)", logger: self.logger)
            let sessions = try await connection.query("SELECT count(*) AS count FROM coordinator_session WHERE expires_at > now()", logger: self.logger)
                .first { Int(try $0("count", as: Int64.self)) } ?? 1
            if share == .all {
                // All or none, so that two standbys taking over at once cannot each end up
                // with part and wait for the other's part for ever: the rows are locked in
                // one order (blocking, not skipping), and the second finds them taken.
                let claimable = try await connection.query(
                    "SELECT partition FROM partition_lease WHERE epoch = \(session.epoch) OR expires_at <= now() ORDER BY partition FOR UPDATE", logger: self.logger
                ).all { try $0.integer("partition") }
                let held: Set<Int>
                if claimable.count == session.partitions {
                    try await connection.query(
                        "UPDATE partition_lease SET epoch = \(session.epoch), owner = \(session.name), expires_at = now() + \(interval)::interval", logger: self.logger)
                    held = Set(claimable)
                } else {
                    try await connection.query("UPDATE partition_lease SET expires_at = '-infinity' WHERE epoch = \(session.epoch)", logger: self.logger)
                    held = []
                }
                return Leases(held: held, acquired: held.subtracting(before), lost: before.subtracting(held), sessions: sessions)
            }
            let fairShare = (session.partitions + max(1, sessions) - 1) / max(1, sessions)
            var held = Set(try await connection.query(
                "UPDATE partition_lease SET expires_at = now() + \(interval)::interval WHERE epoch = \(session.epoch) RETURNING partition", logger: self.logger
            ).all { try $0.integer("partition") })
            if held.count > fairShare {
                let extra = Array(held.sorted().suffix(held.count - fairShare))
                try await connection.query(
                    "UPDATE partition_lease SET expires_at = '-infinity' WHERE epoch = \(session.epoch) AND partition = ANY(\(extra.map(Int64.init)))", logger: self.logger)
                held.subtract(extra)
            }
            var acquired: Set<Int> = []
            if held.count < fairShare {
                acquired = Set(try await connection.query(
                    """
                    UPDATE partition_lease SET epoch = \(session.epoch), owner = \(session.name), expires_at = now() + \(interval)::interval
                    WHERE partition IN (
                        SELECT partition FROM partition_lease WHERE expires_at <= now() ORDER BY partition LIMIT \(Int64(fairShare - held.count)) FOR UPDATE SKIP LOCKED)
                    RETURNING partition
                    """, logger: self.logger
                ).all { try $0.integer("partition") })
                held.formUnion(acquired)
            }
            return Leases(held: held, acquired: held.subtracting(before), lost: before.subtracting(held), sessions: sessions)
        }
    }

    /// Hands every lease of the session back and ends it (a coordinator that stops).
    public func endSession(_ session: Session) async throws {
        try await transaction("end the session of coordinator \(session.name)") { connection in
            try await connection.query("UPDATE partition_lease SET expires_at = '-infinity' WHERE epoch = \(session.epoch)", logger: self.logger)
            try await connection.query("DELETE FROM coordinator_session WHERE epoch = \(session.epoch)", logger: self.logger)
        }
    }

    /// The partition a workflow was given; nil for an unknown id.
    public func partition(of workflowID: String) async throws -> Int? {
        try await read("read the partition of workflow \(workflowID)") { connection in
            try await connection.query("SELECT partition FROM workflow WHERE id = \(workflowID)", logger: self.logger).first { try $0.integer("partition") }
        }
    }

    /// Who holds each partition now, by partition: the epoch and the coordinator's name.
    public func leaseHolders() async throws -> [Int: (epoch: Int64, owner: String?)] {
        try await read("read the partition leases") { connection in
            let rows = try await connection.query("SELECT partition, epoch, owner FROM partition_lease WHERE expires_at > now()", logger: self.logger)
                .all { (try $0.integer("partition"), try $0("epoch", as: Int64.self), try $0("owner", as: String?.self)) }
            return Dictionary(uniqueKeysWithValues: rows.map { ($0.0, (epoch: $0.1, owner: $0.2)) })
        }
    }

    /// Checks, in the caller's transaction, that `epoch` holds `partition`, and locks the
    /// lease row until the transaction ends, so that no takeover commits in between.
    /// Returns false when the store has no leases (one coordinator, no sessions).
    @discardableResult
    func checkLease(_ connection: PostgresConnection, partition: Int, workflowID: String, epoch: Int64) async throws -> Bool {
        guard let lease = try await connection.query(
            "SELECT epoch, owner FROM partition_lease WHERE partition = \(partition) FOR SHARE", logger: logger
        ).first({ (try $0("epoch", as: Int64.self), try $0("owner", as: String?.self)) }) else { return false }
        guard lease.0 == epoch else {
            throw WorkflowStoreError(
                .staleEpoch,
                "partition \(partition) of workflow \(workflowID) is held under epoch \(lease.0)\(lease.1.map { " by \($0)" } ?? ""), not this writer's \(epoch): it lost the lease; stop driving the partition's workflows")
        }
        return true
    }

    /// A duration as PostgreSQL interval text.
    static func interval(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return "\(Double(seconds) + Double(attoseconds) / 1e18) seconds"
    }
}
