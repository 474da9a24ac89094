import BenchmarkSupport
import FlowML
import FlowServing
import Foundation
import Hummingbird
import Logging

// `flow-serve-benchmark`: `flow ml serve`'s throughput with 1, 4 and 16 streams at once,
// side by side in one run: aggregate tokens/s, and the median time to the first token,
// through the HTTP API (curl clients, streaming). Generations run one at a time today, so
// more streams share the same tokens/s and wait longer for their first: the baseline that
// batching streams into each decoding step is measured against (docs/ml.md, "Serving").
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
let server = ModelServer(catalog: catalog, capacity: 64, logger: logger)
let port = Int.random(in: 30_000..<40_000)
let application = Application(router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
let serving = Task { try await application.runService() }
try await Task.sleep(for: .seconds(1))

/// One streamed completion through curl: seconds to its first event and to its end.
func stream() async throws -> (first: Double, total: Double) {
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

print("flow ml serve, \(tokens) tokens a stream, model \(folder.lastPathComponent); one generation at a time")
print("streams  tokens/s  first token p50 (s)  wall (s)")
for streams in [1, 4, 16] {
    let started = ContinuousClock.now
    let results = try await withThrowingTaskGroup(of: (first: Double, total: Double).self) { group in
        for _ in 0..<streams { group.addTask { try await stream() } }
        var all: [(first: Double, total: Double)] = []
        for try await result in group { all.append(result) }
        return all
    }
    let wall = milliseconds(ContinuousClock.now - started) / 1000
    print(String(format: "%7d  %8.1f  %19.3f  %8.2f", streams, Double(streams * tokens) / wall, percentile(results.map(\.first), 0.5), wall))
}
serving.cancel()
