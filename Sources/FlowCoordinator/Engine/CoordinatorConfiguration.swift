import FlowCore
import Foundation

/// How a coordinator runs.
public struct CoordinatorConfiguration: Sendable {
    public var names: TopologyNames
    /// Holds `workflows.sqlite`.
    public var dataFolder: URL
    /// Names this coordinator in logs and dead-letter headers.
    public var coordinatorID: String
    /// How often overdue steps and due schedules are looked for.
    public var supervisionInterval: Duration
    /// Added to a step's worst-case duration before the coordinator counts it overdue: the
    /// time a request may wait in its queue and a reply in ours.
    public var replyGrace: Duration
    /// Replies and commands taken from the broker at once.
    public var prefetch: UInt16
    /// How long a workflow suspended because a step could not be recorded or sent waits
    /// before it runs again, growing while that keeps happening.
    public var relaunchBackoff: Backoff
    /// The ownership epoch every append carries (``WorkflowStore``). One coordinator per
    /// store keeps it as it is; coordinators that share a store will take workflows over
    /// by raising it, which fences out the one that held them.
    public var epoch: Int64

    public init(
        names: TopologyNames = TopologyNames(),
        dataFolder: URL,
        coordinatorID: String = "coordinator-\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)",
        supervisionInterval: Duration = .milliseconds(500),
        replyGrace: Duration = .seconds(30),
        prefetch: UInt16 = 200,
        relaunchBackoff: Backoff = Backoff(initial: .seconds(1), maximum: .seconds(60)),
        epoch: Int64 = 0
    ) {
        self.names = names
        self.dataFolder = dataFolder
        self.coordinatorID = coordinatorID
        self.supervisionInterval = supervisionInterval
        self.replyGrace = replyGrace
        self.prefetch = prefetch
        self.relaunchBackoff = relaunchBackoff
        self.epoch = epoch
    }

    public var storePath: String { dataFolder.appendingPathComponent("workflows.sqlite").path }
    public var commandQueue: String { names.name(Topology.workflowCommandQueue) }
}
