import ArgumentParser
import FlowAMQP
import FlowCore
import Foundation
import Logging

/// Flags every command that talks to the broker shares.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("amqp-url"), help: "Broker URL (default: $AMQP_URL, then amqp://guest:guest@127.0.0.1:5672/).")
    var amqpURL: String?

    @Option(help: "Heartbeat interval in seconds.")
    var heartbeat: Int = 10

    @Option(help: "PEM file of CA certificates for amqps:// URLs (default: $AMQP_CA_FILE).")
    var caFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: $FLOW_LOG_LEVEL, then info).")
    var logLevel: String?

    func configuration(connectionName: String) throws -> AMQPConfiguration {
        let environment = ProcessInfo.processInfo.environment
        let url = amqpURL ?? environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
        var configuration = try AMQPConfiguration(url: url)
        configuration.heartbeatSeconds = heartbeat
        configuration.connectionName = connectionName
        if let caFile = caFile ?? environment["AMQP_CA_FILE"] {
            configuration.tls.caCertificatePath = caFile
        }
        return configuration
    }

    /// Bootstraps logging to standard error. Services log at `info` by default; one-shot
    /// commands at `warning`, so their output is their result.
    func logger(label: String, defaultLevel: Logger.Level = .warning) -> Logger {
        let level = (logLevel ?? ProcessInfo.processInfo.environment["FLOW_LOG_LEVEL"]).flatMap(Logger.Level.init(rawValue:)) ?? defaultLevel
        FlowObservation.bootstrapLogging(level: level)
        return Logger(label: label)
    }

    func connect(as name: String, logger: Logger) async throws -> AMQPConnection {
        do {
            return try await AMQPConnection.connect(try configuration(connectionName: name), logger: logger)
        } catch let error as AMQPError {
            throw ValidationError(error.message)
        }
    }
}

/// The broker object names: the standard ones, or prefixed (`--topology-prefix`,
/// `FLOW_TOPOLOGY_PREFIX`) for deployments and tests that share a vhost.
func topologyNames(_ prefix: String?) -> TopologyNames {
    TopologyNames(prefix: prefix ?? ProcessInfo.processInfo.environment["FLOW_TOPOLOGY_PREFIX"], workQueues: WorkerCommand.profiles.map(\.queue))
}
