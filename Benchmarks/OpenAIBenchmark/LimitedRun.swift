import BenchmarkSupport
import FlowAMQP
import FlowContracts
import FlowCore
import FlowTesting
import Foundation
import Logging

/// Copies of `flow worker openai`, configured at 10 times the limit of a server that
/// enforces one, taking a backlog of analyses: how close to the server's limit they run,
/// and how many calls it refuses.
enum LimitedRun {
    struct Result {
        /// Calls the server accepted per second beyond its first burst (which a quiet
        /// server lets through at once), from the first request published to the last
        /// reply: a client that keeps exactly to the limit makes the limit.
        var perSecond: Double
        var calls: Int
        var refused: Int
        /// Of them, those in the run's first two seconds, before the copies learned the limit.
        var refusedAtStart: Int
    }

    static func measure(
        copies: Int, requests: Int, limitPerSecond: Int, announces: Bool, requester: AMQPConnection, url: String, logger: Logger
    ) async throws -> Result {
        let server = try await FakeOpenAIServer()
        server.enforce(.init(requestsPerSecond: Double(limitPerSecond), burst: limitPerSecond, announces: announces))
        let names = TopologyNames(prefix: "bench.limited.\(UUID().uuidString.prefix(6).lowercased())")
        try await requester.declare(names.topology)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-\(names.prefix!)")
        let processes = FlowProcesses(prefix: names.prefix!, url: url)
        let environment = [
            "OPENAI_API_KEY": "sk-benchmark", "OPENAI_BASE_URL": server.baseURL, "FLOW_OPENAI_MODEL": "bench-model",
            "FLOW_OPENAI_CACHE_TTL_SECONDS": "0", "FLOW_OPENAI_RPM": "\(10 * 60 * limitPerSecond)", "FLOW_OPENAI_TPM": "100000000",
        ]
        let workers = try (0..<copies).map { _ in
            try processes.launch(["worker", "openai", "--data-dir", folder.path, "--concurrency", "256"], environment: environment)
        }
        // The copies stop before their queue is deleted, which they would take for a fault.
        func stopWorkers() {
            for worker in workers where worker.isRunning { worker.terminate() }
            for worker in workers { worker.waitUntilExit() }
        }
        defer {
            stopWorkers()
            try? FileManager.default.removeItem(at: folder)
        }
        // Each copy counts the others every second from the broker's consumers, so wait
        // until they all consume and then for one count more.
        let openaiQueue = names.queue(.openai)
        while try await requester.inspectQueue(openaiQueue).consumerCount < copies { try await Task.sleep(for: .milliseconds(100)) }
        try await Task.sleep(for: .seconds(2))

        let channel = try await AnalysisChannel(requester: requester, names: names, prefetch: 500)
        let clock = ContinuousClock()
        let began = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<requests {
                group.addTask {
                    try await channel.analyse(id: "limited-\(index)", documentIndex: index, text: "Document \(index): the plan was approved.")
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - began
        await channel.close()
        stopWorkers()
        for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
        for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }
        let result = Result(
            perSecond: Double(server.admittedArrivals.count - limitPerSecond) / (elapsed / .seconds(1)), calls: server.received.count, refused: server.refusedCount,
            refusedAtStart: server.refusedArrivals.filter { $0 - began < .seconds(2) }.count
        )
        await server.stop()
        return result
    }
}
