import FlowCore
import Foundation

/// A worker's durable memory: the final replies of completed activities by message id,
/// so a duplicate delivery is answered without running again, and the last heartbeat of
/// running ones, so a redelivery resumes. ``ActivityResultStore`` (SQLite in the worker's
/// data folder) is the default; a PostgreSQL one (`FLOW_ACTIVITY_STORE=postgres://…`,
/// module `FlowPostgres`) lets copies on several hosts answer each other's redeliveries.
/// Both pass one suite (`Tests/FlowRuntimeTests/ActivityStoreConformance.swift`).
public protocol ActivityStore: Sendable {
    /// The stored final reply of a completed activity.
    func completedReply(messageID: String) async throws -> ActivityReply?
    /// Records a completed activity's reply, replacing one of the same message id, and
    /// forgets its heartbeat. Called before the delivery is acknowledged, so a crash after
    /// it still answers the redelivery from the store.
    func recordCompletion(_ reply: ActivityReply) async throws
    func recordHeartbeat(messageID: String, details: JSONText) async throws
    func lastHeartbeat(messageID: String) async throws -> JSONText?
    /// How many completed activities are remembered.
    func completedCount() async throws -> Int
    /// Removes entries past the retention period, then the oldest beyond the maximum count.
    func prune() async throws
}

extension ActivityResultStore: ActivityStore {}
