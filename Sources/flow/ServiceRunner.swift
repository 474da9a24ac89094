import ArgumentParser
import FlowAMQP
import Foundation
import Logging
import ServiceLifecycle

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
