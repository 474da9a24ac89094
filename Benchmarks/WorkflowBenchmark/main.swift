import BenchmarkSupport
import FlowAMQP
import FlowCore
import Foundation
import Logging

// Workflows per second and the coordinator's overhead per step, beside the bare activity
// round trip through the same worker, in the same run:
//
//   swift build -c release && swift run -c release flow-workflow-benchmark [--workflows N] [--sequential S]
//
// It starts the real `flow worker default` and `flow coordinator` (from the same build
// folder) on a private topology, then measures:
//   1. the bare round trip: one `echo` activity request and its reply, one at a time,
//      replying to a classic and to a quorum queue;
//   2. one `echo_chain` workflow of three steps at a time: start command to result;
//   3. N such workflows started at once: workflows per second until the last result.
// Overhead per step = (workflow latency - 3 x bare round trip) / 3: what recording each
// step in SQLite and routing its reply through the coordinator add.

let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
var logger = Logger(label: "flow.benchmark")
logger.logLevel = .error

let prefix = "bench.workflow.\(UUID().uuidString.prefix(6).lowercased())"
let names = TopologyNames(prefix: prefix)
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-\(prefix)")
let processes = FlowProcesses(prefix: prefix, url: url)

let requester = try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: logger)
try await requester.declare(names.topology)
let worker = try processes.launch(["worker", "default", "--data-dir", folder.appendingPathComponent("worker").path, "--concurrency", "64"])
let coordinator = try processes.launch(["coordinator", "--data-dir", folder.appendingPathComponent("coordinator").path])

let replyQueue = "\(prefix).benchmark-replies"
try await requester.declare(Topology(queues: [.init(name: replyQueue, durable: false, exclusive: true, autoDelete: true)]))
let arrivals = Arrivals()
let consumer = try await requester.consume(queue: replyQueue, prefetch: 500)
// The coordinator's replies go to a durable quorum queue, which commits each one to disk
// before the coordinator sees it; a bare round trip is measured both ways, so the
// coordinator's own overhead is told apart from that durability.
let quorumReplyQueue = "\(prefix).benchmark-quorum-replies"
try await requester.declare(Topology(queues: [.init(name: quorumReplyQueue, arguments: ["x-queue-type": "quorum"])]))
let quorumConsumer = try await requester.consume(queue: quorumReplyQueue, prefetch: 500)
let readers = [consumer, quorumConsumer].map { consumer in
    Task {
        for try await delivery in consumer {
            try await delivery.ack()
            if delivery.properties.type == FlowProtocol.ReplyType.progress { continue }
            if let id = delivery.properties.correlationID { await arrivals.arrive(id) }
        }
    }
}

func activityRoundTrip(_ id: String, replyTo: String) async throws {
    let properties = AMQPProperties(contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: id, replyTo: replyTo, messageID: id, type: "echo")
    try await requester.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(.default), properties: properties, body: Array(#"{"text":"x"}"#.utf8)))
    await arrivals.wait(for: id)
}

func workflow(_ id: String, steps: Int = 3) async throws {
    let start = WorkflowCommand.Start(workflow: "echo_chain", workflowID: id, input: try JSONText(validating: #"{"text":"x","steps":\#(steps)}"#))
    let properties = AMQPProperties(contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: id, replyTo: replyQueue, messageID: id, type: WorkflowCommand.Kind.start.rawValue)
    try await requester.publish(AMQPMessage(routingKey: names.name(Topology.workflowCommandQueue), properties: properties, body: Array(try FlowJSON.encode(start))))
    await arrivals.wait(for: id)
}

let clock = ContinuousClock()
for index in 0..<30 { try await workflow("warm-\(index)") }

let sequential = option("--sequential", default: 200)
var bare: [Double] = []
var bareQuorum: [Double] = []
for index in 0..<sequential {
    var began = clock.now
    try await activityRoundTrip("bare-\(index)", replyTo: replyQueue)
    bare.append(milliseconds(clock.now - began))
    began = clock.now
    try await activityRoundTrip("bare-quorum-\(index)", replyTo: quorumReplyQueue)
    bareQuorum.append(milliseconds(clock.now - began))
}
var chained: [Double] = []
var single: [Double] = []
for index in 0..<sequential {
    var began = clock.now
    try await workflow("seq-\(index)")
    chained.append(milliseconds(clock.now - began))
    began = clock.now
    try await workflow("one-\(index)", steps: 1)
    single.append(milliseconds(clock.now - began))
}

let count = option("--workflows", default: 1_000)
let began = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for index in 0..<count { group.addTask { try await workflow("burst-\(index)") } }
    try await group.waitForAll()
}
let burst = clock.now - began

let bareMedian = percentile(bareQuorum, 0.5)
let workflowMedian = percentile(chained, 0.5)
print("bare echo round trip, classic reply queue: p50 \(String(format: "%.2f", percentile(bare, 0.5))) ms, p99 \(String(format: "%.2f", percentile(bare, 0.99))) ms (\(sequential) sequential)")
print("bare echo round trip, quorum reply queue:  p50 \(String(format: "%.2f", bareMedian)) ms, p99 \(String(format: "%.2f", percentile(bareQuorum, 0.99))) ms (\(sequential) sequential)")
let singleMedian = percentile(single, 0.5)
let perStep = (workflowMedian - singleMedian) / 2
print("one-step echo_chain workflow:        p50 \(String(format: "%.2f", singleMedian)) ms, p99 \(String(format: "%.2f", percentile(single, 0.99))) ms (\(sequential) sequential)")
print("three-step echo_chain workflow:      p50 \(String(format: "%.2f", workflowMedian)) ms, p99 \(String(format: "%.2f", percentile(chained, 0.99))) ms (\(sequential) sequential)")
print("each added step costs:               \(String(format: "%.2f", perStep)) ms ((three-step - one-step) / 2)")
print("coordinator overhead per step:       \(String(format: "%.2f", perStep - bareMedian)) ms (each added step - bare round trip with quorum replies)")
print("start and result, once per workflow: \(String(format: "%.2f", singleMedian - perStep)) ms (one-step workflow - one step)")
print("workflows per second (\(count) at once): \(String(format: "%.1f", Double(count) / (milliseconds(burst) / 1000))) (\(String(format: "%.1f", 3 * Double(count) / (milliseconds(burst) / 1000))) steps/s)")

for reader in readers { reader.cancel() }
consumer.cancel()
quorumConsumer.cancel()
_ = try? await requester.deleteQueue(quorumReplyQueue)
coordinator.terminate()
worker.terminate()
coordinator.waitUntilExit()
worker.waitUntilExit()
for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
await requester.close()
try? FileManager.default.removeItem(at: folder)
