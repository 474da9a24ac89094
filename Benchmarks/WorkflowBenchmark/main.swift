import BenchmarkSupport
import FlowAMQP
import FlowCoordinator
import FlowCore
import FlowPostgres
import FlowWorkflows
import Foundation
import Logging

// Workflows per second and the coordinator's overhead per step, beside the bare activity
// round trip and the worker's own throughput through the same worker, in the same run:
//
//   swift build -c release && swift run -c release flow-workflow-benchmark [--workflows N] [--sequential S] [--baseline PATH] [--store postgres://…]
//
// It starts the real `flow worker default` and `flow coordinator` (from the same build
// folder) on a private topology, then measures:
//   1. the bare round trip: one `echo` activity request and its reply, one at a time,
//      replying to a classic and to a quorum queue;
//   2. the ceiling: 3N `echo` requests published at once, straight to the worker: the
//      activities per second no workflow engine on this worker can beat, since every step
//      is one such round trip;
//   3. for each coordinator (this build's, then the one of `--baseline PATH`, a `flow`
//      binary built from older code, on a new store): one `echo_chain` of one step and of
//      three steps at a time, then N three-step workflows started at once;
//   4. the replay of a 1,000-event journal through this build's workflow code.
// With `--store postgres://USER@HOST/DB` (a server; scripts/postgres-start prints one) the
// coordinator and the store alone are measured on PostgreSQL too, each in a new database
// dropped afterwards, beside SQLite in the same run.
// Overhead per step = each added step - the bare round trip: what recording a step and
// routing its reply through the coordinator add.

let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
let logger = {
    var logger = Logger(label: "flow.benchmark")
    logger.logLevel = .error
    return logger
}()

let prefix = "bench.workflow.\(UUID().uuidString.prefix(6).lowercased())"
let names = TopologyNames(prefix: prefix)
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-\(prefix)")
let processes = FlowProcesses(prefix: prefix, url: url)
let baseline = stringOption("--baseline").map { FlowProcesses(prefix: prefix, url: url, executable: URL(fileURLWithPath: $0)) }

let requester = await orExit { try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: logger) }
try await requester.declare(names.topology)
let worker = try processes.launch(["worker", "default", "--data-dir", folder.appendingPathComponent("worker").path, "--concurrency", "64"])

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

func atOnce(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Duration {
    let began = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<count { group.addTask { try await body(index) } }
        try await group.waitForAll()
    }
    return ContinuousClock.now - began
}

let clock = ContinuousClock()
let sequential = option("--sequential", default: 200)
let count = option("--workflows", default: 1_000)

var bare: [Double] = []
var bareQuorum: [Double] = []
for index in 0..<30 { try await activityRoundTrip("warm-bare-\(index)", replyTo: quorumReplyQueue) }
for index in 0..<sequential {
    var began = clock.now
    try await activityRoundTrip("bare-\(index)", replyTo: replyQueue)
    bare.append(milliseconds(clock.now - began))
    began = clock.now
    try await activityRoundTrip("bare-quorum-\(index)", replyTo: quorumReplyQueue)
    bareQuorum.append(milliseconds(clock.now - began))
}
let ceilingTime = try await atOnce(3 * count) { try await activityRoundTrip("ceiling-\($0)", replyTo: quorumReplyQueue) }
let ceiling = Double(3 * count) / (milliseconds(ceilingTime) / 1000)

/// What one coordinator does with echo_chain on this worker.
struct Figures {
    var label: String
    var single: [Double]
    var chained: [Double]
    var burst: Duration

    var singleMedian: Double { percentile(single, 0.5) }
    var chainedMedian: Double { percentile(chained, 0.5) }
    var perStep: Double { (chainedMedian - singleMedian) / 2 }
    var workflowsPerSecond: Double { Double(count) / (milliseconds(burst) / 1000) }
}

func measure(_ label: String, _ flow: FlowProcesses, arguments: [String] = []) async throws -> Figures {
    let store = arguments.contains("--store") ? [] : ["--data-dir", folder.appendingPathComponent("coordinator-\(label)").path]
    let coordinator = try flow.launch(["coordinator"] + store + arguments)
    for index in 0..<30 { try await workflow("\(label)-warm-\(index)") }
    var chained: [Double] = []
    var single: [Double] = []
    for index in 0..<sequential {
        var began = clock.now
        try await workflow("\(label)-seq-\(index)")
        chained.append(milliseconds(clock.now - began))
        began = clock.now
        try await workflow("\(label)-one-\(index)", steps: 1)
        single.append(milliseconds(clock.now - began))
    }
    let burst = try await atOnce(count) { try await workflow("\(label)-burst-\($0)") }
    coordinator.terminate()
    coordinator.waitUntilExit()
    return Figures(label: label, single: single, chained: chained, burst: burst)
}

/// The PostgreSQL server of `--store`, and the databases made on it for this run.
let postgresServer = try stringOption("--store").map { try PostgresStoreLocation(url: $0) }
var benchmarkDatabases: [String] = []
@MainActor func newPostgresStore(_ label: String) async throws -> PostgresStoreLocation {
    let name = "flow_bench_\(prefix.split(separator: ".").last!)_\(label)"
    benchmarkDatabases.append(name)
    return try await postgresServer!.creatingDatabase(name, logger: logger)
}

let figures = [
    try await measure("this-build", processes),
    try await measure("no-group", processes, arguments: ["--group-commit", "off"]),
] + (baseline == nil ? [] : [try await measure("baseline", baseline!)])
    + (postgresServer == nil ? [] : [try await measure("postgres", processes, arguments: ["--store", try await newPostgresStore("coordinator").url])])

/// The store alone, as the coordinator writes it for `count` three-step workflows at once
/// (a start; per step its command, the note that it was sent, and its answer; the end),
/// with group commit and with a transaction per write: what the store can carry, and the
/// time each write takes from its call to its result, which is what group commit adds to.
struct StoreFigures {
    var label: String
    var elapsed: Duration
    var writes: [Double]
    /// SQLite's group commit; nil on PostgreSQL, where each write is a transaction.
    var statistics: GroupCommitStatistics?
}

func storeFigures(groupCommit: Bool, postgres: PostgresStoreLocation? = nil) async throws -> StoreFigures {
    let store: any WorkflowStore = if let postgres {
        try await PostgresWorkflowStore.open(postgres, logger: logger)
    } else {
        try SQLiteWorkflowStore(path: folder.appendingPathComponent("store-\(groupCommit)/workflows.sqlite").path, groupCommit: groupCommit)
    }
    let input = try JSONText(validating: #"{"text":"x","steps":3}"#)
    let latencies = Latencies()
    let elapsed = try await atOnce(count) { index in
        let id = "store-\(index)"
        func timed(_ write: () async throws -> Void) async throws {
            let began = clock.now
            try await write()
            await latencies.add(milliseconds(clock.now - began))
        }
        let at = Date()
        try await timed { _ = try await store.create(WorkflowStart(id: id, name: EchoChain.name, input: input), epoch: 0, at: at) }
        var last: Int64 = 1
        for position in 0..<3 {
            let scheduled = WorkflowEvent.ScheduledActivity(position: position, activity: "echo", queue: "default-queue", input: input, options: .init(), stepKey: "echo@\(position)")
            try await timed { last = try await store.append([.activityScheduled(scheduled)], to: id, expectedSequence: last, epoch: 0, at: at).last!.sequence }
            try await timed { try await store.note(.sent(messageID: "\(id)/echo@\(position)", resentBecause: nil), at: at) }
            try await timed { last = try await store.append([.activityCompleted(position: position, attempt: 1, output: input)], to: id, expectedSequence: last, epoch: 0, at: at).last!.sequence }
        }
        try await timed { try await store.append([.workflowCompleted(output: input)], to: id, expectedSequence: last, epoch: 0, at: at) }
    }
    if let store = store as? PostgresWorkflowStore { await store.close() }
    return StoreFigures(
        label: postgres != nil ? "postgres" : groupCommit ? "group commit" : "one per write", elapsed: elapsed, writes: await latencies.all,
        statistics: (store as? SQLiteWorkflowStore)?.commitStatistics
    )
}

actor Latencies {
    var all: [Double] = []
    func add(_ value: Double) { all.append(value) }
}

let storeRuns = [try await storeFigures(groupCommit: true), try await storeFigures(groupCommit: false)]
    + (postgresServer == nil ? [] : [try await storeFigures(groupCommit: false, postgres: try await newPostgresStore("store"))])

/// A 1,000-event journal of echo_chain (start, 499 steps scheduled and completed, end),
/// replayed through this build's code.
func replayTimes(runs: Int) async throws -> [Double] {
    let at = Date(timeIntervalSince1970: 1_800_000_000)
    var events: [WorkflowEvent] = [.workflowStarted(name: EchoChain.name, input: try JSONText(validating: #"{"text":"x","steps":499}"#))]
    for position in 0..<499 {
        let hop = try JSONText(validating: #"{"step":\#(position + 1),"text":"x"}"#)
        events.append(.activityScheduled(.init(position: position, activity: "echo", queue: "default-queue", input: hop, options: .init(), stepKey: "echo@\(position)")))
        events.append(.activityCompleted(position: position, attempt: 1, output: hop))
    }
    events.append(.workflowCompleted(output: try JSONText(validating: #"{"steps":499,"text":"x"}"#)))
    let history = WorkflowHistory(
        workflowID: "replay", workflow: EchoChain.name,
        events: events.enumerated().map { JournalEntry(sequence: Int64($0.offset + 1), epoch: 0, recordedAt: at, event: $0.element) }
    )
    let replayer = WorkflowReplayer(registry: ApplicationWorkflows.registry(), logger: logger)
    var times: [Double] = []
    for _ in 0..<runs {
        let began = clock.now
        let result = await replayer.replay(history)
        times.append(milliseconds(clock.now - began))
        guard result.replays else { fatalError("the benchmark's own history does not replay: \(result)") }
    }
    return times
}
let replays = try await replayTimes(runs: 50)

func format(_ value: Double) -> String { String(format: "%.2f", value) }
let bareMedian = percentile(bareQuorum, 0.5)
print("bare echo round trip, classic reply queue: p50 \(format(percentile(bare, 0.5))) ms, p99 \(format(percentile(bare, 0.99))) ms (\(sequential) sequential)")
print("bare echo round trip, quorum reply queue:  p50 \(format(bareMedian)) ms, p99 \(format(percentile(bareQuorum, 0.99))) ms (\(sequential) sequential)")
print("ceiling, the worker's own echo throughput: \(String(format: "%.1f", ceiling)) activities/s (\(3 * count) at once)")
print("")
print("coordinator                          " + figures.map { $0.label.padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
@MainActor func row(_ name: String, _ value: (Figures) -> String) {
    print(name.padding(toLength: 37, withPad: " ", startingAt: 0) + figures.map { value($0).padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
}
row("one-step workflow p50 (ms)") { format($0.singleMedian) }
row("three-step workflow p50 (ms)") { format($0.chainedMedian) }
row("three-step workflow p99 (ms)") { format(percentile($0.chained, 0.99)) }
row("each added step (ms)") { format($0.perStep) }
row("coordinator overhead per step (ms)") { format($0.perStep - bareMedian) }
row("start and result per workflow (ms)") { format($0.singleMedian - $0.perStep) }
row("workflows/s (\(count) at once)") { String(format: "%.1f", $0.workflowsPerSecond) }
row("steps/s (\(count) at once)") { String(format: "%.1f", 3 * $0.workflowsPerSecond) }
row("steps/s as a fraction of the ceiling") { String(format: "%.2f", 3 * $0.workflowsPerSecond / ceiling) }
print("")
print("the store alone, \(count) three-step workflows' writes at once  " + storeRuns.map { $0.label.padding(toLength: 16, withPad: " ", startingAt: 0) }.joined())
@MainActor func storeRow(_ name: String, _ value: (StoreFigures) -> String) {
    print(name.padding(toLength: 48, withPad: " ", startingAt: 0) + storeRuns.map { value($0).padding(toLength: 16, withPad: " ", startingAt: 0) }.joined())
}
storeRow("writes/s") { String(format: "%.0f", Double($0.writes.count) / (milliseconds($0.elapsed) / 1000)) }
storeRow("steps/s the store can carry") { String(format: "%.0f", Double(3 * count) / (milliseconds($0.elapsed) / 1000)) }
storeRow("write, call to result, p50 (ms)") { format(percentile($0.writes, 0.5)) }
storeRow("write, call to result, p99 (ms)") { format(percentile($0.writes, 0.99)) }
storeRow("writes per commit (mean, largest)") { figures in
    guard let statistics = figures.statistics, statistics.commits > 0 else { return "1, 1" }
    return String(format: "%.1f, %d", statistics.meanBatch, statistics.largestBatch)
}
print("")
print("replay of a 1,000-event journal: p50 \(format(percentile(replays, 0.5))) ms, p99 \(format(percentile(replays, 0.99))) ms (50 runs)")

for name in benchmarkDatabases { try? await postgresServer?.droppingDatabase(name, logger: logger) }
for reader in readers { reader.cancel() }
consumer.cancel()
quorumConsumer.cancel()
_ = try? await requester.deleteQueue(quorumReplyQueue)
worker.terminate()
worker.waitUntilExit()
for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
await requester.close()
try? FileManager.default.removeItem(at: folder)
