import ArgumentParser
import FlowAMQP
import FlowCore
import FlowDefaultActivities
import FlowML
import FlowMLActivities
import FlowOpenAI
import FlowOpenAIActivities
import FlowRuntime
import Foundation
import Logging
import ServiceLifecycle

/// `flow worker default|ml|openai`: runs one worker actor until SIGTERM or SIGINT.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker actor that consumes one queue.",
        discussion: """
            QUEUE is default (documents, storage, health, cleanup, delegation of training), ml (training, \
            evaluation) or openai (chat API calls). Run more copies to scale. SIGTERM or SIGINT stop taking \
            new messages, let running activities finish within the grace period and return the rest to the queue.
            """
    )

    @Argument(help: "The queue to consume: default, ml or openai.")
    var queue: String

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Activities run at once, also the prefetch (default: $FLOW_CONCURRENCY, then 8 for default, 4 for ml (of which one trains), 16 for openai).")
    var concurrency: Int?

    @Option(help: "The data folder: activity store, blobs, documents, checkpoints (default: $FLOW_DATA_DIR, then .flow/data).")
    var dataDir: String?

    @Option(help: "Seconds running activities may take to finish after SIGTERM (default: $FLOW_SHUTDOWN_GRACE_SECONDS, then 30).")
    var gracePeriod: Int?

    @Option(help: "ml only: seconds one delivery may train a job before it checkpoints and hands the job to a fresh delivery; keep it under the broker's consumer_timeout (default: $FLOW_TRAINING_HOLD_SECONDS, then 1200).")
    var trainingHoldSeconds: Int?

    @OptionGroup var service: ServiceOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let workQueue = WorkQueue(workerName: queue) else {
            throw ValidationError("unknown queue '\(queue)': use default, ml or openai")
        }
        if workQueue == .ml, !service.check { MLCommand.prepareEngine() }
        let concurrency = concurrency ?? environment["FLOW_CONCURRENCY"].flatMap(Int.init)
        if let concurrency, !(1...1000).contains(concurrency) {
            throw ValidationError("--concurrency must be from 1 to 1000, got \(concurrency)")
        }
        let dataFolder = URL(fileURLWithPath: dataDir ?? environment["FLOW_DATA_DIR"] ?? ".flow/data")
        let grace = gracePeriod ?? environment["FLOW_SHUTDOWN_GRACE_SECONDS"].flatMap(Int.init) ?? 30
        let trainingHold = trainingHoldSeconds ?? environment["FLOW_TRAINING_HOLD_SECONDS"].flatMap(Int.init) ?? 1200
        guard trainingHold > 0 else { throw ValidationError("--training-hold-seconds must be positive, got \(trainingHold)") }
        let names = service.names
        let amqpConfiguration = try connection.configuration(connectionName: "flow worker \(workQueue.workerName)")
        let workerConfiguration = WorkerConfiguration(
            queue: workQueue, names: names, concurrency: concurrency, dataFolder: dataFolder, shutdownGracePeriod: .seconds(grace)
        )
        let defaultMetricsPort: Int
        switch workQueue {
        case .default: defaultMetricsPort = 9464
        case .ml: defaultMetricsPort = 9465
        case .openai: defaultMetricsPort = 9466
        }
        let metrics = try service.metrics(defaultPort: defaultMetricsPort)
        var openAIConfiguration: OpenAIConfiguration?
        if workQueue == .openai {
            do {
                openAIConfiguration = try OpenAIConfiguration.fromEnvironment(dataFolder: dataFolder)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        if service.check {
            if let openAIConfiguration {
                print("OpenAI: \(openAIConfiguration.baseURL), model \(openAIConfiguration.defaultModel), key \(openAIConfiguration.apiKey == nil ? "not set" : "set")")
            }
            print("flow worker \(workQueue.workerName): queue \(names.queue(workQueue)), concurrency \(workerConfiguration.concurrency), data \(dataFolder.path), broker \(amqpConfiguration.redactedURL)")
            return
        }

        let logger = connection.logger(label: "flow.worker.\(workQueue.workerName)", defaultLevel: .info)
        let amqp = try await connection.connect(as: "flow worker \(workQueue.workerName)", logger: logger)
        let store: ActivityResultStore
        do {
            store = try ActivityResultStore(path: workerConfiguration.storePath)
        } catch {
            throw ValidationError("cannot open the activity store: \(error)")
        }
        let registry: ActivityRegistry
        var extraMetrics: (@Sendable () -> String)?
        switch workQueue {
        case .default:
            registry = DefaultActivities.registry(transport: amqp, names: names, dataFolder: DataFolder(dataFolder), workerID: workerConfiguration.workerID)
        case .openai:
            let client = OpenAIClient(configuration: openAIConfiguration!, logger: logger)
            registry = OpenAIActivities.registry(client: client)
            extraMetrics = { client.ledger.prometheusText() }
            if openAIConfiguration!.requiresKey, openAIConfiguration!.apiKey == nil {
                logger.warning("OPENAI_API_KEY is not set: every activity fails with MissingAPIKey and waits in the dead-letter queue until the key is set and it is replayed")
            }
        case .ml:
            if let threads = environment["FLOW_ML_THREADS"].flatMap(Int.init) { ComputeThreads.count = threads }
            let options = TrainingJobOptions(workerID: workerConfiguration.workerID, deliveryHoldLimit: .seconds(trainingHold))
            registry = MLActivities.registry(dataFolder: DataFolder(dataFolder), options: options)
        }
        let worker = Worker(configuration: workerConfiguration, registry: registry, transport: amqp, store: store, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: worker)]
        if let port = metrics.port {
            let health = HealthServer(
                host: metrics.host, port: port, movesWhenTaken: metrics.isDefault, statistics: worker.statistics, queueName: names.queue(workQueue), transport: amqp, logger: logger,
                extraMetrics: extraMetrics
            )
            services.append(.init(service: health))
        }
        try await runUntilSignalled(services, connection: amqp, logger: logger)
    }
}
