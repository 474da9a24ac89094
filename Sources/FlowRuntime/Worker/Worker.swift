import FlowCore
import FlowObservability
import FlowTransport
import Foundation
import Logging
import ServiceLifecycle

/// A worker actor: consumes one queue and runs its activities, at most `concurrency` at once.
///
/// A `Service`: on graceful shutdown (SIGTERM, SIGINT) it asks the broker for no more
/// deliveries, lets the activities in flight finish within the grace period, cancels the
/// rest and returns their messages to the queue. Nothing is lost and nothing half-done is
/// acknowledged.
public struct Worker: Service {
    public let configuration: WorkerConfiguration
    public let statistics: WorkerStatistics
    private let registry: ActivityRegistry
    private let transport: any MessageTransport
    private let store: any ActivityStore
    private let logger: Logger

    public init(
        configuration: WorkerConfiguration,
        registry: ActivityRegistry,
        transport: any MessageTransport,
        store: any ActivityStore,
        metrics: FlowMetrics = FlowMetrics(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.registry = registry
        self.transport = transport
        self.store = store
        self.statistics = WorkerStatistics(metrics: metrics, queue: configuration.names.queue(configuration.queue), activities: registry.names)
        var logger = logger
        logger[metadataKey: "amqp.queue"] = "\(configuration.names.queue(configuration.queue))"
        self.logger = logger
    }

    public func run() async throws {
        guard registry.unimplemented.isEmpty else {
            throw ActivityFailure.nonRetryable(
                .unknownActivity, "this worker's registry lacks activities of its contract: \(registry.unimplemented.joined(separator: ", ")); register them before starting it"
            )
        }
        try await transport.declare(configuration.names.topology)
        let queueName = configuration.names.queue(configuration.queue)
        // Cancel requests are heard before any work is taken, so none for it is missed.
        let cancels = ActivityCancels()
        let cancelRequests = try await consumeCancelRequests(into: cancels, queueName: queueName)
        let consumer = try await transport.consume(queue: queueName, prefetch: UInt16(clamping: configuration.concurrency))
        let shutdownSignal = ShutdownSignal()
        let processor = DeliveryProcessor(
            configuration: configuration, registry: registry, transport: transport, store: store,
            statistics: statistics, logger: logger, shutdownSignal: shutdownSignal, cancels: cancels
        )
        logger.info(
            "worker started",
            metadata: ["worker.id": "\(configuration.workerID)", "worker.concurrency": "\(configuration.concurrency)", "activities": "\(registry.names.joined(separator: ","))"]
        )

        let statistics = self.statistics
        statistics.setConsuming(true)
        let consumerFailure: (any Error)? = await withTaskGroup(of: Void.self) { group in
            var failure: (any Error)?
            do {
                // A graceful shutdown stops the consumer (basic.cancel) and lets the loop end
                // by itself. Cancelling the loop instead would close the consumer's channel,
                // and the activities in flight could no longer acknowledge their deliveries.
                try await withGracefulShutdownHandler {
                    for try await delivery in consumer {
                        // Deliveries already on their way when the shutdown began go back
                        // to the queue at once rather than start here.
                        guard !shutdownSignal.isRequested else {
                            try? await delivery.nack(requeue: true)
                            continue
                        }
                        statistics.begin()
                        group.addTask {
                            await processor.process(delivery)
                            statistics.end()
                        }
                    }
                } onGracefulShutdown: {
                    shutdownSignal.request()
                    Task { await consumer.stop() }
                }
            } catch {
                logger.error("the consumer stopped", metadata: ["error": "\(error)"])
                failure = error
            }

            // Shutting down: no new deliveries; what is running gets the grace period, and
            // long work is told so it can save its progress and hand its message back.
            statistics.setConsuming(false)
            shutdownSignal.request()
            await consumer.stop()
            let deadline = ContinuousClock.now + configuration.shutdownGracePeriod
            if statistics.inFlight > 0 {
                logger.info("waiting for activities in flight", metadata: ["in_flight": "\(statistics.inFlight)", "grace_period": "\(configuration.shutdownGracePeriod)"])
            }
            while statistics.inFlight > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if statistics.inFlight > 0 {
                logger.warning("grace period over; cancelling activities and returning their messages", metadata: ["in_flight": "\(statistics.inFlight)"])
                group.cancelAll()
            }
            await group.waitForAll()
            return failure
        }
        consumer.cancel()
        cancelRequests.cancel()
        logger.info("worker stopped", metadata: ["completed": "\(statistics.count(.completed))", "failed": "\(statistics.count(.failed))"])
        // A consumer the broker ended (its queue was deleted) ends the worker with the
        // reason, after the work in flight was settled; a supervisor restarts it and the
        // restart declares the topology again.
        if let consumerFailure { throw consumerFailure }
    }

    /// Binds a queue of this worker's own to the cancel exchange for its work queue, and
    /// hands every cancel request (``ActivityCancel``) to `cancels`. The queue lives as long
    /// as the worker's connection (exclusive); the transport declares it again after a
    /// reconnection. A request that does not decode is dropped with a log line: there is
    /// nothing to replay, and its sender can send it again.
    private func consumeCancelRequests(into cancels: ActivityCancels, queueName: String) async throws -> Task<Void, Never> {
        let cancelQueue = configuration.names.name("activity-cancels.\(configuration.queue.queueName).\(UUID().uuidString.prefix(12).lowercased())")
        try await transport.declare(Topology(
            queues: [.init(name: cancelQueue, durable: false, exclusive: true, autoDelete: true)],
            bindings: [.init(exchange: configuration.names.activityCancelExchange, queue: cancelQueue, routingKey: queueName)]
        ))
        let requests = try await transport.consume(queue: cancelQueue, prefetch: 64)
        let logger = self.logger
        let statistics = self.statistics
        return Task {
            do {
                for try await delivery in requests {
                    try? await delivery.ack()
                    guard let request = try? FlowJSON.decode(ActivityCancel.self, from: delivery.body) else {
                        logger.warning("a cancel request that is not one was dropped (docs/protocol.md, Cancelling an activity)", metadata: ["amqp.type": "\(delivery.properties.type ?? "")"])
                        continue
                    }
                    let running = cancels.cancel(request.messageID, reason: request.reason)
                    statistics.cancelRequested()
                    logger.info(running ? "cancelling a running activity on request" : "a cancel request for an activity not running here; noted", metadata: [
                        "message.id": "\(request.messageID)", "reason": "\(request.reason)",
                    ])
                }
            } catch {
                logger.warning("the cancel-request consumer stopped; running activities can no longer be cancelled here", metadata: ["error": "\(error)"])
            }
        }
    }
}
