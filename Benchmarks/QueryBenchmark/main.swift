import BenchmarkSupport
import FlowAMQP
import FlowClient
import FlowCoordinator
import FlowCore
import Foundation
import Logging

// What the coordinator's queries cost, and whether they slow the workflows beside them:
//
//   swift build -c release && .build/release/flow-query-benchmark [--stored N] [--running R] [--steps S]
//
// It writes N finished workflows (default 10,000) into a fresh coordinator store, starts
// the real `flow worker default` and `flow coordinator` on it (from the same build folder),
// and then, in one run, side by side:
//   1. R workflows at once (default 100, echo_chain of S steps, default 20), no queries;
//   2. the same R workflows again while one client asks `flow.workflow.list` back to back
//      (the first page of 50 of all N, and a count over them), measuring each answer;
//   3. the list alone, with nothing running.
// Printed: the list's latency (p50, p95, max) with and without the load, and the time the
// R workflows took without and with the queries.

let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
var logger = Logger(label: "flow.benchmark")
logger.logLevel = .error

let stored = option("--stored", default: 10_000)
let running = option("--running", default: 100)
let steps = option("--steps", default: 20)
let prefix = "bench.query.\(UUID().uuidString.prefix(6).lowercased())"
let names = TopologyNames(prefix: prefix)
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-\(prefix)")
let processes = FlowProcesses(prefix: prefix, url: url)

// The store, seeded before the coordinator opens it.
let storePath = folder.appendingPathComponent("coordinator/workflows.sqlite").path
do {
    let store = try SQLiteWorkflowStore(path: storePath)
    let epoch = Date().addingTimeInterval(-86_400)
    let input = try JSONText(validating: #"{"text":"seeded","steps":3}"#)
    for index in 0..<stored {
        let at = epoch.addingTimeInterval(Double(index))
        _ = try await store.create(WorkflowStart(id: "stored-\(index)", name: "echo_chain", input: input), epoch: 0, at: at)
        try await store.append([.workflowCompleted(output: input)], to: "stored-\(index)", expectedSequence: 1, epoch: 0, at: at)
    }
}

let connection = try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: logger)
try await connection.declare(names.topology)
let worker = try processes.launch(["worker", "default", "--data-dir", folder.appendingPathComponent("worker").path, "--concurrency", "64"])
let coordinator = try processes.launch(["coordinator", "--data-dir", folder.appendingPathComponent("coordinator").path])
let clock = ContinuousClock()

@Sendable func runWorkflows(_ client: CoordinatorClient, label: String) async throws -> Duration {
    let began = clock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<running {
            group.addTask {
                let start = WorkflowCommand.Start(workflow: "echo_chain", workflowID: "\(label)-\(index)", input: try JSONText(validating: #"{"text":"x","steps":\#(steps)}"#))
                let result = try await client.start(start, wait: .seconds(600))
                precondition(result?.status == .completed, "workflow \(label)-\(index) ended \(result?.status.rawValue ?? "without an answer")")
            }
        }
        try await group.waitForAll()
    }
    return clock.now - began
}

/// Lists until `stop` says so; the latency of each answer, in milliseconds.
@Sendable func listRepeatedly(_ client: CoordinatorClient, until stop: @Sendable () async -> Bool) async throws -> [Double] {
    var latencies: [Double] = []
    repeat {
        let began = clock.now
        let page = try await client.query(.list, WorkflowQuery.List(limit: 50), as: WorkflowPage.self)
        latencies.append(milliseconds(clock.now - began))
        precondition(page.workflows.count == 50 && page.total >= stored)
    } while await !stop()
    return latencies
}

actor Flag {
    var isSet = false
    func set() { isSet = true }
}

@Sendable func figures(_ values: [Double]) -> String {
    "p50 \(String(format: "%.2f", percentile(values, 0.5))) ms, p95 \(String(format: "%.2f", percentile(values, 0.95))) ms, max \(String(format: "%.2f", values.max() ?? 0)) ms over \(values.count) queries"
}

try await CoordinatorClient.withClient(transport: connection, names: names, logger: logger) { client in
    for index in 0..<10 { _ = try await client.start(.init(workflow: "echo_chain", workflowID: "warm-\(index)", input: try JSONText(validating: #"{"text":"x"}"#)), wait: .seconds(60)) }
    let quiet = try await runWorkflows(client, label: "quiet")
    let done = Flag()
    async let queried: Duration = {
        let duration = try await runWorkflows(client, label: "queried")
        await done.set()
        return duration
    }()
    let underLoad = try await listRepeatedly(client) { await done.isSet }
    let busy = try await queried
    var idle: [Double] = []
    for _ in 0..<200 { idle += try await listRepeatedly(client) { true } }

    print("flow.workflow.list, first page of 50 of \(stored) stored workflows:")
    print("  while \(running) workflows of \(steps) steps run: \(figures(underLoad))")
    print("  with nothing running:                 \(figures(idle))")
    print("\(running) workflows of \(steps) steps at once (\(running * steps) steps):")
    print("  without queries: \(String(format: "%.2f", milliseconds(quiet) / 1000)) s")
    print("  with queries:    \(String(format: "%.2f", milliseconds(busy) / 1000)) s (\(underLoad.count) lists answered meanwhile)")
}

coordinator.terminate()
worker.terminate()
coordinator.waitUntilExit()
worker.waitUntilExit()
for queue in names.topology.queues { _ = try? await connection.deleteQueue(queue.name) }
for exchange in names.topology.exchanges { try? await connection.deleteExchange(exchange.name) }
await connection.close()
try? FileManager.default.removeItem(at: folder)
