import ArgumentParser
import FlowAMQP
import FlowConsole
import FlowCore
import Foundation
import Logging
import ServiceLifecycle

/// `flow console`: the operator console (docs/console.md) until SIGTERM or SIGINT.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the operator console: workflows, queues and workers, dead letters, schedules, training jobs and OpenAI costs.",
        discussion: """
            Everything it shows and does goes through the broker (the coordinator's queries and commands, the \
            dead-letter tools, the actors' activities) and RabbitMQ's management API, so it runs on any machine \
            that reaches them. It binds 127.0.0.1 by default; any other address needs FLOW_CONSOLE_TOKEN.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Address to listen on (default: $FLOW_CONSOLE_HOST, then 127.0.0.1). Anything but loopback needs a token.")
    var host: String?

    @Option(help: "Port (default: $FLOW_CONSOLE_PORT, then 9470); 0 is any free port.")
    var port: Int?

    @Option(help: "The bearer token, at least 16 characters (default: $FLOW_CONSOLE_TOKEN).")
    var token: String?

    @Option(help: "The management API (default: $FLOW_MANAGEMENT_URL, then http://<broker host>:<AMQP port + 10000>).")
    var managementURL: String?

    @Option(help: "Processes whose /healthz and /metrics to show, as name=URL, comma-separated (default: $FLOW_CONSOLE_ENDPOINTS, then the standard ports 9464-9467 on 127.0.0.1).")
    var endpoints: String?

    @Option(help: "Who the dead-letter audit log names for actions taken in the console (default: console).")
    var operatorName: String?

    @Option(help: .hidden)
    var topologyPrefix: String?

    @Flag(help: "Check the configuration and exit without connecting.")
    var check = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let amqpConfiguration = try connection.configuration(connectionName: "flow console")
        var parsedEndpoints = ConsoleConfiguration.standardEndpoints
        if let list = endpoints ?? environment["FLOW_CONSOLE_ENDPOINTS"], !list.isEmpty {
            parsedEndpoints = try list.split(separator: ",").map { item in
                let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, parts[1].hasPrefix("http://") || parts[1].hasPrefix("https://") else {
                    throw ValidationError("--endpoints takes name=URL pairs such as 'worker default=http://127.0.0.1:9464', got '\(item)'")
                }
                return ConsoleConfiguration.Endpoint(name: parts[0], url: parts[1])
            }
        }
        let configuration = ConsoleConfiguration(
            host: host ?? environment["FLOW_CONSOLE_HOST"] ?? "127.0.0.1",
            port: port ?? environment["FLOW_CONSOLE_PORT"].flatMap(Int.init) ?? ConsoleConfiguration.defaultPort,
            token: token ?? environment["FLOW_CONSOLE_TOKEN"],
            names: topologyNames(topologyPrefix),
            managementURL: managementURL ?? environment["FLOW_MANAGEMENT_URL"] ?? "http://\(amqpConfiguration.host):\(amqpConfiguration.port + 10000)",
            managementUser: amqpConfiguration.user, managementPassword: amqpConfiguration.password, vhost: amqpConfiguration.vhost,
            endpoints: parsedEndpoints, operatorName: operatorName ?? "console",
            auditLog: URL(fileURLWithPath: environment["FLOW_AUDIT_LOG"] ?? ".flow/audit/dlq.jsonl")
        )
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.description)
        }
        if check {
            print("flow console: http://\(configuration.host):\(configuration.port), token \(configuration.token == nil ? "none (loopback only)" : "required"), broker \(amqpConfiguration.redactedURL), management \(configuration.managementURL)")
            return
        }
        let logger = connection.logger(label: "flow.console", defaultLevel: .info)
        let amqp = try await connection.connect(as: "flow console", logger: logger)
        let console = try ConsoleService(configuration: configuration, transport: amqp, logger: logger) { port in
            FileHandle.standardOutput.write(Data("console: http://\(configuration.host):\(port)\n".utf8))
        }
        try await runUntilSignalled([.init(service: console)], serviceName: "flow-console", connection: amqp, logger: logger)
    }
}
