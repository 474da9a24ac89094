import CBareRoundTrip
import FlowAMQP
import FlowCore
import Foundation
import Logging

// Prints the Swift transport's request-reply round trips per second next to a bare
// rabbitmq-c loop in C doing the same round trip, in the same run, and their ratio.
//
//   swift run -c release flow-transport-benchmark [--count N] [--window W] [--rounds R] [--body-size B]
//
// AMQP_URL picks the broker (default amqp://guest:guest@127.0.0.1:5672/).

func option(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let parsed = Int(arguments[index + 1]) else { return value }
    return parsed
}

let count = option("--count", default: 20_000)
let window = option("--window", default: 64)
let rounds = option("--rounds", default: 3)
let bodySize = option("--body-size", default: 256)
let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
var logger = Logger(label: "flow.benchmark")
logger.logLevel = .error

func runC(_ configuration: AMQPConfiguration) throws -> Double {
    var seconds = 0.0
    var error = [CChar](repeating: 0, count: 256)
    let status = CBareRoundTrip_run(
        configuration.host, Int32(configuration.port), configuration.user, configuration.password,
        Int32(count), Int32(window), Int32(bodySize), &seconds, &error, error.count
    )
    guard status == 0 else {
        throw AMQPError(.protocolFailure, "bare C loop failed: \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
    }
    return Double(count) / seconds
}

func runSwift(_ configuration: AMQPConfiguration) async throws -> Double {
    let requester = try await AMQPConnection.connect(configuration, logger: logger)
    let responder = try await AMQPConnection.connect(configuration, logger: logger)
    let result = try await RoundTripProbe(requester: requester, responder: responder, window: window, queuePrefix: "bench.swift")
        .run(count: count, bodySize: bodySize)
    await requester.close()
    await responder.close()
    return result.roundTripsPerSecond
}

let configuration = try AMQPConfiguration(url: url)
print("round trips: publish with confirm -> consume -> reply with confirm -> ack -> consume reply -> ack")
print("count \(count), window \(window), body \(bodySize) bytes, \(rounds) rounds, broker \(configuration.redactedURL)")
print("round  bare C (rt/s)  Swift (rt/s)  Swift / C")
var cResults: [Double] = []
var swiftResults: [Double] = []
for round in 1...rounds {
    // Alternate the order so neither side always runs on a warmer broker.
    let c: Double
    let swift: Double
    if round % 2 == 1 {
        c = try runC(configuration)
        swift = try await runSwift(configuration)
    } else {
        swift = try await runSwift(configuration)
        c = try runC(configuration)
    }
    cResults.append(c)
    swiftResults.append(swift)
    print(String(format: "%5d  %13.0f  %12.0f  %8.1f%%", round, c, swift, 100 * swift / c))
}
let medianC = cResults.sorted()[cResults.count / 2]
let medianSwift = swiftResults.sorted()[swiftResults.count / 2]
print(String(format: "median %13.0f  %12.0f  %8.1f%%", medianC, medianSwift, 100 * medianSwift / medianC))
