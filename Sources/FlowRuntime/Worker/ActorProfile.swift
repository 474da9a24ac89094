import FlowCore
import FlowObservability
import FlowTransport
import Foundation
import Logging
import ServiceLifecycle

/// What `flow worker NAME` needs to know to run one actor: its queue, its defaults, and
/// how to build its activities from the environment. Each actor module exposes one; the
/// command line looks the name up among them and has no per-queue code of its own.
public struct ActorProfile: Sendable {
    public var queue: WorkQueue
    /// One line for `flow worker --help`: what the actor does.
    public var summary: String
    /// Activities run at once when neither `--concurrency` nor `FLOW_CONCURRENCY` says.
    public var defaultConcurrency: Int
    /// Where `/metrics` and `/healthz` listen by default.
    public var metricsPort: Int
    /// Runs first, before the configuration is read (the ML actor picks its kernels here).
    public var prepare: @Sendable () -> Void
    /// Checks the actor's own settings without connecting (`flow worker NAME --check`);
    /// returns lines that describe them, or throws what is wrong.
    public var check: @Sendable (_ environment: ActorEnvironment) throws -> [String]
    /// Builds the actor's activities for a worker connected through `environment.transport`.
    public var activities: @Sendable (_ environment: ActorEnvironment) async throws -> ActorActivities

    public init(
        queue: WorkQueue, summary: String, defaultConcurrency: Int, metricsPort: Int, prepare: @escaping @Sendable () -> Void = {},
        check: @escaping @Sendable (_ environment: ActorEnvironment) throws -> [String] = { _ in [] },
        activities: @escaping @Sendable (_ environment: ActorEnvironment) async throws -> ActorActivities
    ) {
        self.queue = queue
        self.summary = summary
        self.defaultConcurrency = defaultConcurrency
        self.metricsPort = metricsPort
        self.prepare = prepare
        self.check = check
        self.activities = activities
    }
}

/// What an actor's activities are built from.
public struct ActorEnvironment: Sendable {
    /// The worker's connection; nil for `--check`, which does not connect.
    public var transport: (any MessageTransport)?
    public var names: TopologyNames
    public var dataFolder: URL
    public var workerID: String
    public var logger: Logger
    /// `FLOW_*` settings: the process environment, with the command line's flags over it.
    public var variables: [String: String]
    /// The process's metrics, which the activities' own instruments record into.
    public var metrics: FlowMetrics

    public init(
        transport: (any MessageTransport)?, names: TopologyNames, dataFolder: URL, workerID: String, logger: Logger, variables: [String: String],
        metrics: FlowMetrics = FlowMetrics()
    ) {
        self.metrics = metrics
        self.transport = transport
        self.names = names
        self.dataFolder = dataFolder
        self.workerID = workerID
        self.logger = logger
        self.variables = variables
    }

    /// The worker's connection, which building activities needs.
    public func requireTransport() throws -> any MessageTransport {
        guard let transport else { throw ActivityFailure.nonRetryable(.invalidInput, "building activities needs a broker connection") }
        return transport
    }
}

/// An actor's activities, and what they bring up to date before a scrape of `/metrics`
/// (their instruments record into ``ActorEnvironment/metrics`` as they run).
public struct ActorActivities: Sendable {
    public var registry: ActivityRegistry
    public var prepareScrape: (@Sendable () async -> Void)?
    /// What runs beside the worker for as long as it runs (the OpenAI actor's count of its
    /// copies), in the same service group.
    public var services: [any Service]

    public init(registry: ActivityRegistry, prepareScrape: (@Sendable () async -> Void)? = nil, services: [any Service] = []) {
        self.registry = registry
        self.prepareScrape = prepareScrape
        self.services = services
    }
}
