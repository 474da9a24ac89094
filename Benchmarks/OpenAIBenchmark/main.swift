import BenchmarkSupport
import FlowAMQP
import FlowContracts
import FlowCore
import FlowHTTP
import FlowOpenAI
import FlowOpenAIActivities
import FlowRuntime
import FlowTesting
import Foundation
import Logging
import ServiceLifecycle

// The OpenAI actor's added latency and its throughput, against the OpenAI-compatible
// server on loopback that the tests use (no machine here reaches the internet):
//
//   swift run -c release flow-openai-benchmark [--requests N] [--concurrency C]
//
//   raw:    one POST /chat/completions with libcurl, nothing else;
//   client: OpenAIClient.chat (limiter, budget, retries, JSON, cost), cache off;
//   actor:  an analyze_document_content request through openai-queue to a worker in this
//           process, which asks the server once, and its reply: the whole actor.
// Added latency = actor - raw, at p50 and p99; then requests per second through the actor
// with C requests in flight.
//
// Then against a server with a limit of its own (--limit-rps R a second, a burst of R),
// which it announces in x-ratelimit-* as OpenAI does, 1 and then 3 copies of the real
// `flow worker openai` (built beside this benchmark), each configured at 10 times that
// limit, take --limited-requests calls: their throughput as a fraction of the server's
// limit, and the share of calls it refused. --silent-server repeats it against a server
// that announces nothing, so that only its 429s teach the copies.

func measure(_ count: Int, _ body: (Int) async throws -> Void) async throws -> [Double] {
    let clock = ContinuousClock()
    var samples: [Double] = []
    for index in 0..<count {
        let began = clock.now
        try await body(index)
        samples.append(milliseconds(clock.now - began))
    }
    return samples
}

var logger = Logger(label: "flow.benchmark")
logger.logLevel = .error
let count = option("--requests", default: 300)
let concurrency = option("--concurrency", default: 16)
let server = try await FakeOpenAIServer()
var configuration = OpenAIConfiguration(apiKey: "sk-benchmark", baseURL: server.baseURL, defaultModel: "bench-model", limits: .init())
configuration.cacheFolder = nil
let client = try OpenAIClient(configuration: configuration, logger: logger)
let http = CurlHTTPClient()

func document(_ index: Int) -> String { "Document \(index): the committee approved the plan; the budget is at risk." }

let rawBody = { (index: Int) in
    try FlowJSON.encode(ChatRequest(model: "bench-model", messages: [.user(document(index))]))
}
for index in 0..<20 { _ = try await http.send(HTTPRequest(method: "POST", url: server.baseURL + "/chat/completions", headers: [("Content-Type", "application/json")], body: try rawBody(index))) }
let raw = try await measure(count) { index in
    _ = try await http.send(HTTPRequest(method: "POST", url: server.baseURL + "/chat/completions", headers: [("Content-Type", "application/json")], body: try rawBody(index)))
}
let direct = try await measure(count) { index in
    _ = try await client.chat(ChatRequest(model: "bench-model", messages: [.user(document(index))]), useCache: false)
}

// The actor: a worker on a private topology, fed through the broker.
let names = TopologyNames(prefix: "bench.openai.\(UUID().uuidString.prefix(6).lowercased())")
let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
let requester = await orExit { try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: logger) }
let workerConnection = try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: logger)
try await requester.declare(names.topology)
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-\(names.prefix!)")
let workerConfiguration = WorkerConfiguration(queue: .openai, names: names, concurrency: concurrency, dataFolder: folder)
let worker = Worker(
    configuration: workerConfiguration, registry: OpenAIActivities.registry(client: client), transport: workerConnection,
    store: try ActivityResultStore(path: workerConfiguration.storePath), logger: logger
)
let workerTask = Task { try await worker.run() }

let channel = try await AnalysisChannel(requester: requester, names: names, prefetch: 200)
func throughActor(_ id: String, _ index: Int) async throws {
    try await channel.analyse(id: id, documentIndex: index, text: document(index))
}
for index in 0..<20 { try await throughActor("warm-\(index)", index) }
let actor = try await measure(count) { index in try await throughActor("seq-\(index)", index) }

let clock = ContinuousClock()
let began = clock.now
let burst = count * 4
try await withThrowingTaskGroup(of: Void.self) { group in
    for lane in 0..<concurrency {
        group.addTask {
            for index in stride(from: lane, to: burst, by: concurrency) { try await throughActor("burst-\(index)", index) }
        }
    }
    try await group.waitForAll()
}
let elapsed = milliseconds(clock.now - began) / 1000

func line(_ name: String, _ samples: [Double]) -> String {
    "\(name) p50 \(String(format: "%.3f", percentile(samples, 0.5))) ms, p99 \(String(format: "%.3f", percentile(samples, 0.99))) ms"
}
print(line("raw libcurl POST to the loopback server:     ", raw))
print(line("OpenAIClient.chat (limiter, JSON, cost):     ", direct))
print(line("analyze_document_content through openai-queue:", actor))
print("actor's added latency over the raw round trip: p50 \(String(format: "%.3f", percentile(actor, 0.5) - percentile(raw, 0.5))) ms, p99 \(String(format: "%.3f", percentile(actor, 0.99) - percentile(raw, 0.99))) ms")
print("requests per second through the actor at concurrency \(concurrency): \(String(format: "%.1f", Double(burst) / elapsed))")

await channel.close()
workerTask.cancel()
_ = try? await workerTask.value
for queue in names.topology.queues { _ = try? await requester.deleteQueue(queue.name) }
for exchange in names.topology.exchanges { try? await requester.deleteExchange(exchange.name) }

let limitPerSecond = option("--limit-rps", default: 20)
let limitedRequests = option("--limited-requests", default: 600)
for announces in CommandLine.arguments.contains("--silent-server") ? [true, false] : [true] {
    for copies in [1, 3] {
        let run = try await LimitedRun.measure(
            copies: copies, requests: limitedRequests, limitPerSecond: limitPerSecond, announces: announces, requester: requester, url: url, logger: logger
        )
        print(
            "\(copies) \(copies == 1 ? "copy " : "copies") at 10x a server limit of \(limitPerSecond)/s\(announces ? "" : " (unannounced)"): "
                + "\(String(format: "%.1f", run.perSecond))/s = \(String(format: "%.1f", 100 * run.perSecond / Double(limitPerSecond)))% of the limit, "
                + "\(run.refused) of \(run.calls) calls refused (\(String(format: "%.1f", 100 * Double(run.refused) / Double(max(1, run.calls))))%), \(run.refusedAtStart) in the first 2 s"
        )
    }
}
await requester.close()
await workerConnection.close()
await server.stop()
try? FileManager.default.removeItem(at: folder)
