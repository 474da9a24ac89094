/// The names of the broker objects one deployment uses.
///
/// Production uses the plain names of ``Topology/flow(deliveryLimit:)``. Tests (and
/// deployments sharing a vhost) use a prefix, which renames every object consistently.
public struct TopologyNames: Sendable, Hashable {
    /// Prepended with a dot to every name; `nil` for the standard names.
    public var prefix: String?
    public var deliveryLimit: Int64
    /// The work queues to declare: the built-in actors' and any an application adds.
    public var workQueues: [WorkQueue]

    public init(prefix: String? = nil, deliveryLimit: Int64 = Topology.defaultDeliveryLimit, workQueues: [WorkQueue] = WorkQueue.builtIn) {
        self.prefix = prefix
        self.deliveryLimit = deliveryLimit
        self.workQueues = workQueues
    }

    public func name(_ base: String) -> String {
        prefix.map { "\($0).\(base)" } ?? base
    }

    public func queue(_ workQueue: WorkQueue) -> String { name(workQueue.queueName) }
    public var activitiesExchange: String { name(Topology.activitiesExchange) }
    public var retryExchange: String { name(Topology.retryExchange) }
    public var activityCancelExchange: String { name(Topology.activityCancelExchange) }
    public var deadLetterExchange: String { name(Topology.deadLetterExchange) }
    public var deadLetterQueue: String { name(Topology.deadLetterQueue) }
    public var coordinatorReplyQueue: String { name(Topology.coordinatorReplyQueue) }

    /// The whole topology under these names.
    public var topology: Topology {
        let standard = Topology.flow(deliveryLimit: deliveryLimit, workQueues: workQueues)
        return prefix == nil ? standard : standard.renamed(name)
    }
}
