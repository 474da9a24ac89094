import ArgumentParser
import FlowAMQP
import FlowCore
import Foundation
import Logging
import ServiceLifecycle

/// Flags every long-running service shares: its metrics endpoint, the topology prefix
/// and `--check`.
struct ServiceOptions: ParsableArguments {
    @Option(help: "Port of /healthz, /readyz and /metrics (default: $FLOW_METRICS_PORT, then 9464, 9465, 9466 for the default, ml and openai workers and 9467 for the coordinator; 0 turns them off).")
    var metricsPort: Int?

    @Option(help: "Address the metrics port binds to (default: $FLOW_METRICS_HOST, then 127.0.0.1).")
    var metricsHost: String?

    @Option(help: .hidden)
    var topologyPrefix: String?

    @Flag(help: "Check the configuration and exit without connecting.")
    var check = false

    func metrics(defaultPort: Int) throws -> MetricsEndpoint {
        try MetricsEndpoint(port: metricsPort, host: metricsHost, defaultPort: defaultPort)
    }

    var names: TopologyNames { topologyNames(topologyPrefix) }
}

/// Where a long-running command serves `/healthz`, `/readyz` and `/metrics`.
struct MetricsEndpoint {
    var host: String
    /// 0 when turned off.
    var port: Int

    /// From the flags, then `FLOW_METRICS_PORT` / `FLOW_METRICS_HOST`, then the defaults.
    init(port: Int?, host: String?, defaultPort: Int) throws {
        let environment = ProcessInfo.processInfo.environment
        self.port = port ?? environment["FLOW_METRICS_PORT"].flatMap(Int.init) ?? defaultPort
        guard (0...65535).contains(self.port) else { throw ValidationError("--metrics-port must be from 0 to 65535, got \(self.port)") }
        self.host = host ?? environment["FLOW_METRICS_HOST"] ?? "127.0.0.1"
    }
}

/// Runs services until SIGTERM or SIGINT, then closes the broker connection they share.
func runUntilSignalled(_ services: [ServiceGroupConfiguration.ServiceConfiguration], connection: AMQPConnection, logger: Logger) async throws {
    let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await group.run()
    } catch {
        await connection.close()
        throw error
    }
    await connection.close()
}
