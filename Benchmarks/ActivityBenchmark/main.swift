import BenchmarkSupport
import FlowAMQP
import FlowCore
import FlowRuntime
import FlowTesting
import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

// Activity round trips through the worker runtime, beside a Celery peer on the same broker
// in the same run:
//
//   pip install celery
//   swift run -c release flow-activity-benchmark [--count N] [--window W] [--sequential S]
//
// Our side: a requester publishes a no-op activity with publisher confirms and collects the
// worker's reply from its reply queue; the worker (a separate process, this executable in
// `worker` mode) runs the full runtime: parse, idempotency store, run, store the result,
// reply with a confirm, ack. AMQP_URL picks the broker. The work queue is the real
// quorum queue; replies go to the coordinator's quorum reply queue unless
// --classic-reply-queue is given.
//
//   swift run -c release flow-activity-benchmark --tracing [--rounds R]
//
// measures the cost of tracing instead: rounds of the same run with tracing off (no
// endpoint: the no-op tracer) and on (every delivery sampled, its span exported by
// swift-otel over OTLP/HTTP to a receiver in this process), alternating, side by side.

struct NoOp: Activity {
    static let name = "noop"
    static let queue = WorkQueue.default
    typealias Input = Empty
    typealias Output = Empty
    func run(_ input: Empty, context: ActivityContext) async throws -> Empty { Empty() }
}

let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
func quietLogger() -> Logger {
    var logger = Logger(label: "flow.benchmark")
    logger.logLevel = .error
    return logger
}

func runWorker(prefix: String) async throws {
    let names = TopologyNames(prefix: prefix)
    let connection = try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: quietLogger())
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-bench-\(prefix)")
    let configuration = WorkerConfiguration(queue: .default, names: names, concurrency: option("--concurrency", default: 64), dataFolder: folder)
    var registry = ActivityRegistry()
    registry.register(NoOp())
    let worker = Worker(configuration: configuration, registry: registry, transport: connection, store: try ActivityResultStore(path: configuration.storePath), logger: quietLogger())
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: worker)]
    if ProcessInfo.processInfo.environment["OTEL_EXPORTER_OTLP_ENDPOINT"] != nil {
        // As `flow worker` does it (Sources/flow/Observation.swift): the exporter first, so
        // it stops last and sends what it holds.
        var otel = OTel.Configuration.default
        otel.serviceName = "flow-activity-benchmark"
        otel.logs.enabled = false
        otel.metrics.enabled = false
        otel.diagnosticLogLevel = .warning
        let backend = try OTel.makeTracingBackend(configuration: otel)
        InstrumentationSystem.bootstrap(backend.factory)
        services.insert(.init(service: backend.service), at: 0)
    }
    let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm], logger: quietLogger()))
    try await group.run()
    await connection.close()
    try? FileManager.default.removeItem(at: folder)
}

func runRequester(workerEnvironment: [String: String] = [:]) async throws -> (throughput: Double, p50: Double, p99: Double) {
    let prefix = "bench.flow.\(UUID().uuidString.prefix(6).lowercased())"
    let names = TopologyNames(prefix: prefix)
    let requester = try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: quietLogger())
    try await requester.declare(names.topology)
    let worker = Process()
    worker.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    worker.arguments = ["worker", "--prefix", prefix]
    worker.environment = ProcessInfo.processInfo.environment.merging(workerEnvironment) { _, new in new }
    try worker.run()
    let replies = Arrivals()
    // --classic-reply-queue: replies to an exclusive classic queue (as `flow activity run`
    // and Celery's rpc:// backend use) instead of the coordinator's quorum queue, to show
    // what the quorum queue's replicated, fsynced commit adds to each round trip.
    let replyQueue = CommandLine.arguments.contains("--classic-reply-queue") ? "\(prefix).classic-replies" : names.coordinatorReplyQueue
    if replyQueue != names.coordinatorReplyQueue { try await requester.declare(Topology(queues: [.init(name: replyQueue, durable: false, exclusive: true, autoDelete: true)])) }
    let consumer = try await requester.consume(queue: replyQueue, prefetch: 500)
    let reader = Task {
        for try await delivery in consumer {
            try await delivery.ack()
            if let id = delivery.properties.correlationID { await replies.arrive(id) }
        }
    }
    // The confirm and the reply are awaited together: the confirm usually arrives first,
    // and a publish that fails still fails the round trip.
    func roundTrip(_ id: String) async throws {
        let properties = AMQPProperties(contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: id, replyTo: replyQueue, messageID: id, type: NoOp.name)
        async let confirmed: Void = requester.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(.default), properties: properties, body: Array("{}".utf8)))
        await replies.wait(for: id)
        try await confirmed
    }
    for index in 0..<50 { try await roundTrip("warm-\(index)") }

    let count = option("--count", default: 5_000)
    let window = option("--window", default: 64)
    let clock = ContinuousClock()
    let start = clock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for lane in 0..<window {
            group.addTask {
                for index in stride(from: lane, to: count, by: window) { try await roundTrip("t-\(index)") }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = clock.now - start
    let throughput = Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)

    var latencies: [Double] = []
    for index in 0..<option("--sequential", default: 300) {
        let began = clock.now
        try await roundTrip("s-\(index)")
        let took = clock.now - began
        latencies.append((Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18) * 1000)
    }
    latencies.sort()
    worker.terminate()
    worker.waitUntilExit()
    reader.cancel()
    consumer.cancel()
    for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
    for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
    await requester.close()
    return (throughput, latencies[latencies.count / 2], latencies[min(latencies.count - 1, Int(Double(latencies.count - 1) * 0.99))])
}

func runCelery() throws -> (throughput: Double, p50: Double, p99: Double, version: String) {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("celery/celery_peer.py")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script.path, url, "--count", String(option("--celery-count", default: 2_000)), "--window", String(option("--window", default: 64)), "--sequential", String(option("--sequential", default: 300))]
    if CommandLine.arguments.contains("--celery-quorum") {
        process.environment = ProcessInfo.processInfo.environment.merging(["CELERY_PEER_QUEUE_TYPE": "quorum"]) { _, new in new }
    }
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, let figures = try JSONSerialization.jsonObject(with: data) as? [String: Any],
        let throughput = (figures["round_trips_per_second"] as? NSNumber)?.doubleValue,
        let p50 = (figures["p50_ms"] as? NSNumber)?.doubleValue, let p99 = (figures["p99_ms"] as? NSNumber)?.doubleValue
    else {
        throw AMQPError(.protocolFailure, "the Celery peer failed with status \(process.terminationStatus) (is celery installed? pip install celery): \(String(decoding: data, as: UTF8.self))")
    }
    return (throughput, p50, p99, figures["celery"] as? String ?? "?")
}

if CommandLine.arguments.dropFirst().first == "worker" {
    try await runWorker(prefix: stringOption("--prefix") ?? "bench.flow")
} else if CommandLine.arguments.contains("--tracing") {
    let receiver = try await OTLPReceiver()
    var off: [(throughput: Double, p50: Double, p99: Double)] = []
    var on: [(throughput: Double, p50: Double, p99: Double)] = []
    for _ in 0..<option("--rounds", default: 3) {
        off.append(try await runRequester())
        on.append(try await runRequester(workerEnvironment: receiver.exporterEnvironment.merging(["OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"]) { $1 }))
    }
    print("activity round trips, tracing off (no endpoint) and on (every delivery sampled, OTLP/HTTP protobuf to a loopback receiver), \(option("--count", default: 5_000)) per round, window \(option("--window", default: 64))")
    print("round   off (rt/s)   on (rt/s)   off p50 (ms)   on p50 (ms)   off p99 (ms)   on p99 (ms)")
    for (index, (a, b)) in zip(off, on).enumerated() {
        print(String(format: "%5d   %10.0f   %9.0f   %12.2f   %11.2f   %12.2f   %11.2f", index + 1, a.throughput, b.throughput, a.p50, b.p50, a.p99, b.p99))
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    print(String(format: "median  %10.0f   %9.0f   %12.2f   %11.2f   %12.2f   %11.2f", median(off.map(\.throughput)), median(on.map(\.throughput)), median(off.map(\.p50)), median(on.map(\.p50)), median(off.map(\.p99)), median(on.map(\.p99))))
    print("the receiver took \(receiver.received.requests) export requests, \(receiver.received.bytes / 1024) KiB")
    await receiver.stop()
} else {
    let flow = try await runRequester()
    let celery = try runCelery()
    print("activity round trips: publish with confirm -> worker runs a no-op activity -> reply with confirm -> ack")
    let replies = CommandLine.arguments.contains("--classic-reply-queue") ? "classic exclusive reply queue" : "quorum reply queue"
    print("broker \(try AMQPConfiguration(url: url).redactedURL), \(replies), window \(option("--window", default: 64)), Celery \(celery.version) (threads pool, acks late, rpc:// results, \(CommandLine.arguments.contains("--celery-quorum") ? "quorum" : "classic") task queue)")
    print("                     throughput (rt/s)   p50 (ms)   p99 (ms)")
    print(String(format: "AntifragileFlow      %17.0f   %8.2f   %8.2f", flow.throughput, flow.p50, flow.p99))
    print(String(format: "Celery               %17.0f   %8.2f   %8.2f", celery.throughput, celery.p50, celery.p99))
    print(String(format: "ratio                %16.1fx   %7.2fx   %7.2fx", flow.throughput / celery.throughput, celery.p50 / flow.p50, celery.p99 / flow.p99))
}
