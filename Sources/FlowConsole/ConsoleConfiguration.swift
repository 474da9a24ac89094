import FlowCore
import Foundation

/// Where the console listens, who may use it, and where it reads from.
public struct ConsoleConfiguration: Sendable {
    /// A place that serves `/healthz` and `/metrics`: a worker copy or the coordinator.
    public struct Endpoint: Sendable, Equatable {
        public var name: String
        public var url: String

        public init(name: String, url: String) {
            self.name = name
            self.url = url
        }
    }

    public var host: String
    public var port: Int
    /// The bearer token (`FLOW_CONSOLE_TOKEN`). Required unless the console binds loopback.
    public var token: String?
    public var names: TopologyNames
    public var managementURL: String
    public var managementUser: String
    public var managementPassword: String
    public var vhost: String
    public var endpoints: [Endpoint]
    /// Who the dead-letter audit log names for actions taken here.
    public var operatorName: String
    public var auditLog: URL?

    public static let defaultPort = 9470

    /// The standard metrics ports of the first copy of each process (`docs/configuration.md`).
    public static let standardEndpoints = [
        Endpoint(name: "worker default", url: "http://127.0.0.1:9464"),
        Endpoint(name: "worker ml", url: "http://127.0.0.1:9465"),
        Endpoint(name: "worker openai", url: "http://127.0.0.1:9466"),
        Endpoint(name: "coordinator", url: "http://127.0.0.1:9467"),
    ]

    public init(
        host: String = "127.0.0.1", port: Int = defaultPort, token: String? = nil, names: TopologyNames = TopologyNames(),
        managementURL: String = "http://127.0.0.1:15672", managementUser: String = "guest", managementPassword: String = "guest",
        vhost: String = "/", endpoints: [Endpoint] = standardEndpoints, operatorName: String = "console", auditLog: URL? = nil
    ) {
        self.host = host
        self.port = port
        self.token = token.flatMap { $0.isEmpty ? nil : $0 }
        self.names = names
        self.managementURL = managementURL
        self.managementUser = managementUser
        self.managementPassword = managementPassword
        self.vhost = vhost
        self.endpoints = endpoints
        self.operatorName = operatorName
        self.auditLog = auditLog
    }

    /// Whether the console is reachable only from this machine.
    public var bindsLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Refuses a configuration that would expose the console unauthenticated.
    public func validate() throws(ConsoleConfigurationError) {
        guard bindsLoopback || token != nil else {
            throw ConsoleConfigurationError(
                "the console would listen on \(host), which other machines can reach, with no token: set FLOW_CONSOLE_TOKEN (or --token) to a long random secret, or bind 127.0.0.1"
            )
        }
        if let token, token.count < 16 {
            throw ConsoleConfigurationError("FLOW_CONSOLE_TOKEN is \(token.count) characters long: use at least 16 random characters (openssl rand -hex 24)")
        }
        guard (1...65535).contains(port) || port == 0 else {
            throw ConsoleConfigurationError("port \(port) is not a TCP port: use 1 to 65535, or 0 for any free one")
        }
    }
}

public struct ConsoleConfigurationError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
