import ArgumentParser
import FlowAMQP
import FlowCore
import FlowDefaultActivities
import FlowMLActivities
import FlowOpenAIActivities
import FlowPostgres
import FlowRuntime
import Foundation
import Logging
import ServiceLifecycle

/// `flow worker NAME`: runs one worker actor until SIGTERM or SIGINT. The actors are
/// data: each module's ``ActorProfile``; this command has no per-queue code.
struct WorkerCommand: AsyncParsableCommand {
    /// The actors this build runs.
    static let profiles: [ActorProfile] = [DefaultActivities.profile, MLActivities.profile, OpenAIActivities.profile]

    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker actor that consumes one queue.",
        discussion: "QUEUE is "
            + profiles.map { "\($0.queue.workerName) (\($0.summary))" }.joined(separator: ", ")
            + ". Run more copies to scale. SIGTERM or SIGINT stop taking new messages, let running activities finish within the grace period and return the rest to the queue."
    )

    @Argument(help: ArgumentHelp("The queue to consume: \(profiles.map(\.queue.workerName).joined(separator: ", ")).", valueName: "queue"))
    var queue: String

    @OptionGroup var connection: ConnectionOptions

    @Option(help: ArgumentHelp(
        "Activities run at once, also the prefetch (default: $FLOW_CONCURRENCY, then "
            + profiles.map { "\($0.defaultConcurrency) for \($0.queue.workerName)" }.joined(separator: ", ") + ")."
    ))
    var concurrency: Int?

    @Option(help: "The data folder: activity store, blobs, documents, checkpoints (default: $FLOW_DATA_DIR, then .flow/data).")
    var dataDir: String?

    @Option(help: "The activity store every copy of this worker shares, postgres://USER@HOST/DATABASE, so a redelivery to a copy on another host is answered from it (default: $FLOW_ACTIVITY_STORE, then state/NAME-activities.sqlite in the data folder).")
    var activityStore: String?

    @Option(help: "Seconds running activities may take to finish after SIGTERM (default: $FLOW_SHUTDOWN_GRACE_SECONDS, then 30).")
    var gracePeriod: Int?

    @Option(help: "ml only: seconds one delivery may train a job before it checkpoints and hands the job to a fresh delivery; keep it under the broker's consumer_timeout (default: $FLOW_TRAINING_HOLD_SECONDS, then 1200).")
    var trainingHoldSeconds: Int?

    @OptionGroup var service: ServiceOptions

    func run() async throws {
        var variables = ProcessInfo.processInfo.environment
        guard let profile = Self.profiles.first(where: { $0.queue.workerName == queue || $0.queue.queueName == queue }) else {
            throw ValidationError("unknown queue '\(queue)': use \(Self.profiles.map(\.queue.workerName).joined(separator: ", "))")
        }
        let workQueue = profile.queue
        if !service.check { profile.prepare() }
        let concurrency = concurrency ?? variables["FLOW_CONCURRENCY"].flatMap(Int.init)
        if let concurrency, !(1...1000).contains(concurrency) {
            throw ValidationError("--concurrency must be from 1 to 1000, got \(concurrency)")
        }
        if let trainingHoldSeconds { variables["FLOW_TRAINING_HOLD_SECONDS"] = String(trainingHoldSeconds) }
        let dataFolder = URL(fileURLWithPath: dataDir ?? variables["FLOW_DATA_DIR"] ?? ".flow/data")
        let grace = gracePeriod ?? variables["FLOW_SHUTDOWN_GRACE_SECONDS"].flatMap(Int.init) ?? 30
        let names = service.names
        let amqpConfiguration = try connection.configuration(connectionName: "flow worker \(workQueue.workerName)")
        let workerConfiguration = WorkerConfiguration(
            queue: workQueue, names: names, concurrency: concurrency ?? profile.defaultConcurrency, dataFolder: dataFolder, shutdownGracePeriod: .seconds(grace)
        )
        let metricsEndpoint = try service.metrics(defaultPort: profile.metricsPort)
        let metrics = FlowObservation.metrics
        let logger = connection.logger(label: "flow.worker.\(workQueue.workerName)", defaultLevel: .info)
        func environment(_ transport: (any MessageTransport)?) -> ActorEnvironment {
            ActorEnvironment(
                transport: transport, names: names, dataFolder: dataFolder, workerID: workerConfiguration.workerID, logger: logger, variables: variables, metrics: metrics
            )
        }
        do {
            let description = try profile.check(environment(nil))
            if service.check {
                description.forEach { print($0) }
                print("flow worker \(workQueue.workerName): queue \(names.queue(workQueue)), concurrency \(workerConfiguration.concurrency), data \(dataFolder.path), broker \(amqpConfiguration.redactedURL)")
                return
            }
        } catch {
            throw ValidationError("\(error)")
        }

        let amqp = try await connection.connect(as: "flow worker \(workQueue.workerName)", logger: logger)
        let store: any ActivityStore
        do {
            if let url = activityStore ?? ProcessInfo.processInfo.environment["FLOW_ACTIVITY_STORE"], !url.isEmpty {
                store = try await PostgresActivityStore.open(try PostgresStoreLocation(url: url), logger: logger)
            } else {
                store = try ActivityResultStore(path: workerConfiguration.storePath)
            }
        } catch {
            throw ValidationError("cannot open the activity store: \(error)")
        }
        let activities = try await profile.activities(environment(amqp))
        let worker = Worker(configuration: workerConfiguration, registry: activities.registry, transport: amqp, store: store, metrics: metrics, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: worker)]
        services += activities.services.map { .init(service: $0) }
        if let port = metricsEndpoint.port {
            let health = HealthServer(
                host: metricsEndpoint.host, port: port, movesWhenTaken: metricsEndpoint.isDefault, statistics: worker.statistics, queueName: names.queue(workQueue),
                metrics: metrics, prepareScrape: activities.prepareScrape, transport: amqp, logger: logger
            )
            services.append(.init(service: health))
        }
        try await runUntilSignalled(services, serviceName: "flow-worker-\(workQueue.workerName)", connection: amqp, logger: logger)
    }
}
