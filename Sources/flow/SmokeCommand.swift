import ArgumentParser
import FlowAMQP
import FlowCore

/// `flow smoke`: proves the broker, the topology and the transport work, end to end.
struct SmokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smoke",
        abstract: "Declare the topology, then run request-reply round trips through the broker and check every reply."
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "How many round trips to run.")
    var count: Int = 2_000

    @Option(help: "How many requests are in flight at once.")
    var window: Int = 64

    func run() async throws {
        let logger = connection.logger(label: "flow.smoke")
        let requester = try await connection.connect(as: "flow smoke requester", logger: logger)
        let responder = try await connection.connect(as: "flow smoke responder", logger: logger)
        try await requester.declare(Topology.flow(workQueues: WorkerCommand.profiles.map(\.queue)))
        print("topology declared on \(requester.configuration.redactedURL)")
        let result = try await RoundTripProbe(requester: requester, responder: responder, window: window, queuePrefix: "flow.smoke").run(count: count)
        await requester.close()
        await responder.close()
        print("\(result.roundTrips) request-reply round trips confirmed and checked in \(String(format: "%.2f", result.seconds)) s (\(Int(result.roundTripsPerSecond))/s)")
    }
}
