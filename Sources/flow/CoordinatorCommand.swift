import ArgumentParser
import FlowAMQP
import FlowCoordinator
import FlowCore
import FlowPostgres
import FlowRuntime
import FlowWorkflows
import Foundation
import Logging
import ServiceLifecycle

/// `flow coordinator`: runs the workflow coordinator until SIGTERM or SIGINT.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the workflow coordinator.",
        discussion: """
            Starts workflows from the workflow-commands queue, sends their activities to the work queues, \
            records every reply in its store (workflows.sqlite in its data folder, or PostgreSQL with --store) and resumes \
            unfinished workflows after a restart. Run one coordinator per store. SIGTERM or SIGINT suspend the workflows where they stand.
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var store: CoordinatorStoreOptions

    @Option(help: "Seconds a step may be late past its worst case before the coordinator sends it again (default: $FLOW_REPLY_GRACE_SECONDS, then 30).")
    var replyGrace: Int?

    @Option(help: "Commit the store writes of concurrent workflows together: on or off (default: $FLOW_STORE_GROUP_COMMIT, then on). Off is for comparing, as flow-workflow-benchmark does.")
    var groupCommit: String?

    @Option(help: "PostgreSQL store only: seconds a coordinator's lease on the store lasts unrenewed; a standby takes over this long after the active coordinator dies (default: $FLOW_COORDINATOR_LEASE_SECONDS, then 10).")
    var leaseSeconds: Double?

    @OptionGroup var service: ServiceOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let names = service.names
        let grace = replyGrace ?? environment["FLOW_REPLY_GRACE_SECONDS"].flatMap(Int.init) ?? 30
        guard grace >= 0 else { throw ValidationError("--reply-grace must be 0 or more seconds, got \(grace)") }
        let groupCommitSetting = groupCommit ?? environment["FLOW_STORE_GROUP_COMMIT"] ?? "on"
        guard ["on", "off"].contains(groupCommitSetting) else { throw ValidationError("--group-commit must be on or off, got '\(groupCommitSetting)'") }
        var configuration = CoordinatorConfiguration(names: names, dataFolder: store.dataFolder, replyGrace: .seconds(grace))
        let lease = leaseSeconds ?? environment["FLOW_COORDINATOR_LEASE_SECONDS"].flatMap(Double.init) ?? 10
        guard lease >= 1 else { throw ValidationError("--lease-seconds must be 1 or more, got \(lease)") }
        let amqpConfiguration = try connection.configuration(connectionName: "flow coordinator")
        let metricsEndpoint = try service.metrics(defaultPort: 9467)
        let registry = ApplicationWorkflows.registry()
        if service.check {
            print("flow coordinator: workflows \(registry.names.joined(separator: ", ")), store \(store.describe()), commands \(configuration.commandQueue), broker \(amqpConfiguration.redactedURL)")
            return
        }

        let logger = connection.logger(label: "flow.coordinator", defaultLevel: .info)
        let workflowStore = try await store.open(groupCommit: groupCommitSetting == "on", logger: logger)
        // On a shared PostgreSQL store: stand by until this coordinator holds the store, and
        // write under its session's epoch from then on.
        var keeper: CoordinatorLeaseKeeper?
        if let shared = workflowStore as? PostgresWorkflowStore {
            keeper = try await CoordinatorLeaseKeeper.acquire(location: shared.location, name: configuration.coordinatorID, ttl: .milliseconds(Int64(lease * 1000)), logger: logger)
            configuration.epoch = keeper!.session.epoch
        }
        let amqp = try await connection.connect(as: "flow coordinator", logger: logger)
        let coordinator = WorkflowCoordinator(
            configuration: configuration, registry: registry, transport: amqp, store: workflowStore, metrics: FlowObservation.metrics, logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // First, so it stops last: its leases go back once the coordinator has stopped. A
        // lost lease shuts the coordinator down gracefully, and the process exits with why.
        if let keeper { services.append(.init(service: keeper, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)) }
        services.append(.init(service: coordinator))
        if let port = metricsEndpoint.port {
            services.append(.init(service: HealthServer(
                host: metricsEndpoint.host, port: port, movesWhenTaken: metricsEndpoint.isDefault, health: coordinator.statistics, transport: amqp, logger: logger
            )))
        }
        try await runUntilSignalled(services, serviceName: "flow-coordinator", connection: amqp, logger: logger)
    }
}
