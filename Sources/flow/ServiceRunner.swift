import ArgumentParser
import FlowAMQP
import FlowCore
import Foundation
import Logging
import ServiceLifecycle

/// Flags every long-running service shares: its metrics endpoint, the topology prefix
/// and `--check`.
struct ServiceOptions: ParsableArguments {
    @Option(help: "Port of /healthz, /readyz and /metrics (default: $FLOW_METRICS_PORT, then 9464, 9465, 9466 for the default, ml and openai workers and 9467 for the coordinator, or a free port when that one is taken by another copy); 0 is any free port, off turns them off.")
    var metricsPort: String?

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
    /// nil when turned off; 0 for any free port.
    var port: Int?
    /// Whether the port is the service's default, which moves to a free port when another
    /// copy on the host has it; a port the user chose never moves.
    var isDefault: Bool

    /// From the flags, then `FLOW_METRICS_PORT` / `FLOW_METRICS_HOST`, then the defaults.
    init(port: String?, host: String?, defaultPort: Int) throws {
        let environment = ProcessInfo.processInfo.environment
        self.host = host ?? environment["FLOW_METRICS_HOST"] ?? "127.0.0.1"
        guard let chosen = port ?? environment["FLOW_METRICS_PORT"] else {
            self.port = defaultPort
            isDefault = true
            return
        }
        isDefault = false
        if chosen.lowercased() == "off" {
            self.port = nil
            return
        }
        guard let number = Int(chosen), (0...65535).contains(number) else {
            throw ValidationError("--metrics-port (or FLOW_METRICS_PORT) must be a port from 0 to 65535 (0: any free port) or off, got \(chosen)")
        }
        self.port = number
    }
}

/// Runs services until SIGTERM or SIGINT, then closes the broker connection they share.
/// With an OTLP endpoint configured, the trace exporter runs first, so that it stops last;
/// `serviceName` is its `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
func runUntilSignalled(_ services: [ServiceGroupConfiguration.ServiceConfiguration], serviceName: String, connection: AMQPConnection, logger: Logger) async throws {
    var services = services
    do {
        if let tracing = try FlowObservation.tracingService(defaultServiceName: serviceName, logger: logger) {
            services.insert(.init(service: tracing), at: 0)
        }
    } catch {
        await connection.close()
        throw ValidationError("\(error)")
    }
    let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await group.run()
    } catch {
        await connection.close()
        throw error
    }
    await connection.close()
}
