import FlowClient
import FlowCore
import FlowTransport
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// `flow console`: the operator console as a service. It serves the pages on its address
/// until a graceful shutdown (SIGTERM, SIGINT), reading everything through the broker.
public struct ConsoleService: Service {
    let configuration: ConsoleConfiguration
    let transport: any MessageTransport
    let logger: Logger
    let onListening: @Sendable (Int) async -> Void

    /// - Parameter onListening: told the port once the console listens (useful with port 0).
    public init(configuration: ConsoleConfiguration, transport: any MessageTransport, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws {
        try configuration.validate()
        self.configuration = configuration
        self.transport = transport
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let configuration = self.configuration
        let library = try Templates.library()
        let security = ConsoleSecurity(token: configuration.token)
        let logger = self.logger
        let onListening = self.onListening
        try await CoordinatorClient.withClient(transport: transport, names: configuration.names, logger: logger) { [transport] client in
            let pages = ConsolePages(backend: ConsoleBackend(client: client, transport: transport, configuration: configuration), security: security, library: library)
            let application = Application(
                router: pages.router(),
                configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "flow-console"),
                onServerRunning: { channel in
                    let port = channel.localAddress?.port ?? configuration.port
                    logger.notice("console serving", metadata: ["url": "http://\(configuration.host):\(port)", "token": "\(configuration.token == nil ? "none (loopback)" : "required")"])
                    await onListening(port)
                },
                logger: logger
            )
            try await application.run()
        }
    }
}
