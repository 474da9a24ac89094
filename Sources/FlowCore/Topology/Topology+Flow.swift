extension Topology {
    /// Exchange that routes activity requests to their work queue by routing key (the queue name).
    public static let activitiesExchange = "flow.activities"
    /// Exchange that carries cancel requests for running activities to the workers of a
    /// work queue, by routing key (the queue name). Each worker binds a queue of its own.
    public static let activityCancelExchange = "flow.activity-cancels"
    /// Exchange every work queue dead-letters into.
    public static let deadLetterExchange = "flow.dead-letter"
    /// Queue that keeps every dead-lettered message with its `x-death` history.
    public static let deadLetterQueue = "dead-letter-queue"
    /// Headers exchange that parks a message in the retry queue of its delay tier.
    public static let retryExchange = "flow.retry"
    /// Header that selects the delay tier on ``retryExchange``.
    public static let retryDelayHeader = "flow-retry-delay"
    /// Queue the workers send replies to for the coordinator.
    public static let coordinatorReplyQueue = "coordinator-replies"
    /// Queue of commands to the coordinator (start, cancel, signal a workflow).
    public static let workflowCommandQueue = "workflow-commands"

    /// How many times a quorum queue delivers a message before it dead-letters it with
    /// reason `delivery_limit`: this is what stops a message whose handler crashes the
    /// process from looping forever.
    public static let defaultDeliveryLimit: Int64 = 5

    /// How many nodes hold a replica of each queue when it is created
    /// (`x-quorum-initial-group-size`). Three survive the loss of one node with a majority
    /// left. A cluster smaller than this gives every node a replica: one node, one replica.
    /// The broker reads it only when it creates the queue; see `docs/broker.md` for growing
    /// a queue's membership later.
    public static let defaultQuorumGroupSize: Int64 = 3

    /// The fixed delays a retry can wait, each kept by the broker in its own queue: a message
    /// waits there for the tier's TTL and is dead-lettered back to `flow.activities` under its
    /// original routing key, which is its work queue. Fixed tiers, not per-message TTLs,
    /// because a queue only expires messages at its head.
    public static let retryDelayTiers: [RetryDelayTier] = [
        .init(label: "1s", milliseconds: 1_000),
        .init(label: "5s", milliseconds: 5_000),
        .init(label: "30s", milliseconds: 30_000),
        .init(label: "2m", milliseconds: 120_000),
        .init(label: "10m", milliseconds: 600_000),
        .init(label: "1h", milliseconds: 3_600_000),
    ]

    /// The shortest delay tier that waits at least `delay` (the longest when none does),
    /// or nil for no delay at all.
    public static func retryDelayTier(atLeast delay: Duration) -> RetryDelayTier? {
        let milliseconds = delay.wholeMilliseconds
        guard milliseconds > 0 else { return nil }
        return retryDelayTiers.first { $0.milliseconds >= milliseconds } ?? retryDelayTiers.last
    }

    /// Name of the retry queue of a delay tier.
    public static func retryQueueName(_ tier: RetryDelayTier) -> String { "flow.retry.\(tier.label)" }

    /// Arguments every durable queue of ours shares: quorum type, replicated on
    /// `groupSize` nodes, and at-least-once dead-lettering, which the broker only offers
    /// with `reject-publish` overflow.
    private static func quorumArguments(groupSize: Int64, deadLetterExchange: String, extra: FieldTable = [:]) -> FieldTable {
        var arguments: FieldTable = [
            "x-queue-type": "quorum",
            "x-quorum-initial-group-size": .int(groupSize),
            "x-dead-letter-exchange": .string(deadLetterExchange),
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        ]
        arguments.merge(extra) { _, new in new }
        return arguments
    }

    /// The whole topology of AntifragileFlow on one vhost.
    public static func flow(
        deliveryLimit: Int64 = defaultDeliveryLimit,
        quorumGroupSize: Int64 = defaultQuorumGroupSize,
        workQueues: [WorkQueue] = WorkQueue.builtIn
    ) -> Topology {
        var topology = Topology()
        topology.exchanges = [
            Exchange(name: activitiesExchange, kind: .direct),
            Exchange(name: deadLetterExchange, kind: .fanout),
            Exchange(name: retryExchange, kind: .headers),
            Exchange(name: activityCancelExchange, kind: .direct),
        ]

        for workQueue in workQueues {
            topology.queues.append(
                Queue(
                    name: workQueue.queueName,
                    arguments: quorumArguments(
                        groupSize: quorumGroupSize,
                        deadLetterExchange: deadLetterExchange,
                        extra: ["x-delivery-limit": .int(deliveryLimit)]
                    )
                )
            )
            topology.bindings.append(
                Binding(exchange: activitiesExchange, queue: workQueue.queueName, routingKey: workQueue.queueName)
            )
        }

        for tier in retryDelayTiers {
            let name = retryQueueName(tier)
            topology.queues.append(
                Queue(
                    name: name,
                    arguments: quorumArguments(
                        groupSize: quorumGroupSize,
                        deadLetterExchange: activitiesExchange,
                        extra: ["x-message-ttl": .int(tier.milliseconds)]
                    )
                )
            )
            topology.bindings.append(
                Binding(
                    exchange: retryExchange,
                    queue: name,
                    routingKey: "",
                    arguments: ["x-match": "all", retryDelayHeader: .string(tier.label)]
                )
            )
        }

        topology.queues.append(
            Queue(name: deadLetterQueue, arguments: ["x-queue-type": "quorum", "x-quorum-initial-group-size": .int(quorumGroupSize)])
        )
        topology.bindings.append(Binding(exchange: deadLetterExchange, queue: deadLetterQueue, routingKey: ""))

        for name in [coordinatorReplyQueue, workflowCommandQueue] {
            topology.queues.append(
                Queue(
                    name: name,
                    arguments: quorumArguments(
                        groupSize: quorumGroupSize,
                        deadLetterExchange: deadLetterExchange,
                        extra: ["x-delivery-limit": .int(deliveryLimit)]
                    )
                )
            )
        }
        return topology
    }
}

/// One fixed retry delay and its label (`5s`, `2m`), the value of the `flow-retry-delay` header.
public struct RetryDelayTier: Sendable, Hashable {
    public var label: String
    public var milliseconds: Int64

    public init(label: String, milliseconds: Int64) {
        self.label = label
        self.milliseconds = milliseconds
    }
}
