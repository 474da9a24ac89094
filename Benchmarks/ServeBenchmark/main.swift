import BenchmarkSupport
import FlowML
import FlowServing
import Foundation
import Hummingbird
import Logging

// `flow-serve-benchmark`: `flow ml serve`'s throughput with 1, 4 and 16 streams at once:
// aggregate tokens/s and the median time to the first token, through the HTTP API (curl
// clients, streaming). Two servers side by side in one run: one that batches the streams
// into each decoding step (`--batch 16`, the default), and one that decodes one generation
// at a time (`--batch 1`, as before batching) (docs/ml.md, "Serving").
//
//   swift run -c release flow-serve-benchmark [--model DIR] [--tokens 64] [--hidden 256] [--layers 4]

let tokens = option("--tokens", default: 64)
let folder: URL
if let model = stringOption("--model") {
    folder = URL(fileURLWithPath: model)
} else {
    // A random model of a modest size, with the tests' byte-level tokenizer.
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-serve-benchmark-model")
    let tokenizer = URL(fileURLWithPath: "Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json")
    var shape = ModelFactory.Shape(vocabulary: 520)
    shape.hidden = option("--hidden", default: 256)
    shape.intermediate = shape.hidden * 2
    shape.layers = option("--layers", default: 4)
    try ModelFactory.writeRandomLlama(to: folder, shape: shape, tokenizer: tokenizer)
}
var logger = Logger(label: "flow.serve-benchmark")
logger.logLevel = .error
let catalog = try ModelCatalog(folder: folder, name: "bench")
let batchedPort = Int.random(in: 30_000..<35_000)
let serialPort = batchedPort + 5_000
var servers: [Task<Void, any Error>] = []
for (port, batch) in [(batchedPort, 16), (serialPort, 1)] {
    let server = ModelServer(catalog: catalog, capacity: 64, batch: batch, logger: logger)
    let application = Application(router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
    servers.append(Task { try await application.runService() })
}
try await Task.sleep(for: .seconds(1))

/// One streamed completion through curl: seconds to its first event and to its end.
func stream(port: Int) async throws -> (first: Double, total: Double) {
    let body = #"{"model": "bench", "prompt": "The report", "max_tokens": \#(tokens), "temperature": 0, "stream": true}"#
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-sS", "-N", "-d", body, "http://127.0.0.1:\(port)/v1/completions"]
    let pipe = Pipe()
    process.standardOutput = pipe
    let started = ContinuousClock.now
    try process.run()
    // Read on a thread of its own: the first event's arrival is the time to the first token.
    return await withCheckedContinuation { done in
        Thread.detachNewThread {
            var first: Duration?
            var seen = Data()
            while case let chunk = pipe.fileHandleForReading.availableData, !chunk.isEmpty {
                seen.append(chunk)
                if first == nil, seen.range(of: Data("data: {".utf8)) != nil { first = ContinuousClock.now - started }
            }
            process.waitUntilExit()
            done.resume(returning: (milliseconds(first ?? .zero) / 1000, milliseconds(ContinuousClock.now - started) / 1000))
        }
    }
}

/// `streams` streams at once against the server on `port`: tokens/s and the median first token.
func measure(streams: Int, port: Int) async throws -> (rate: Double, first: Double) {
    let started = ContinuousClock.now
    let results = try await withThrowingTaskGroup(of: (first: Double, total: Double).self) { group in
        for _ in 0..<streams { group.addTask { try await stream(port: port) } }
        var all: [(first: Double, total: Double)] = []
        for try await result in group { all.append(result) }
        return all
    }
    let wall = milliseconds(ContinuousClock.now - started) / 1000
    return (Double(streams * tokens) / wall, percentile(results.map(\.first), 0.5))
}

print("flow ml serve, \(tokens) tokens a stream, model \(folder.lastPathComponent), \(ProcessInfo.processInfo.activeProcessorCount) cores")
print("streams  batched tokens/s  one-at-a-time tokens/s  ratio  batched first token p50 (s)  one-at-a-time first token p50 (s)")
for streams in [1, 4, 16] {
    let batched = try await measure(streams: streams, port: batchedPort)
    let serial = try await measure(streams: streams, port: serialPort)
    print(String(format: "%7d  %16.1f  %22.1f  %5.2f  %27.3f  %33.3f", streams, batched.rate, serial.rate, batched.rate / serial.rate, batched.first, serial.first))
}
for server in servers { server.cancel() }
