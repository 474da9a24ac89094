import Foundation

/// Where and how to connect to RabbitMQ.
///
/// Build one from a URL (`amqp://user:pass@host:port/vhost` or `amqps://…`) and adjust the
/// rest; every field has a default that suits a worker on a local broker.
public struct AMQPConfiguration: Sendable, Equatable {
    /// TLS settings for `amqps://` URLs.
    public struct TLS: Sendable, Equatable {
        /// PEM file of the certificate authorities trusted to sign the broker's certificate.
        public var caCertificatePath: String?
        /// Client certificate and key (PEM) for brokers that authenticate clients by certificate.
        public var clientCertificatePath: String?
        public var clientKeyPath: String?
        /// Check the broker's certificate chain. Leave on outside of throwaway tests.
        public var verifyPeer: Bool
        /// Check that the certificate names the host in the URL.
        public var verifyHostname: Bool

        public init(
            caCertificatePath: String? = nil,
            clientCertificatePath: String? = nil,
            clientKeyPath: String? = nil,
            verifyPeer: Bool = true,
            verifyHostname: Bool = true
        ) {
            self.caCertificatePath = caCertificatePath
            self.clientCertificatePath = clientCertificatePath
            self.clientKeyPath = clientKeyPath
            self.verifyPeer = verifyPeer
            self.verifyHostname = verifyHostname
        }
    }

    /// How to reconnect after the connection drops.
    public struct Recovery: Sendable, Equatable {
        /// Whether to reconnect at all; when off, a drop ends the connection with an error.
        public var enabled: Bool
        /// The first wait before reconnecting; doubled after each failure up to `maximumDelay`.
        public var initialDelay: Duration
        public var maximumDelay: Duration

        public init(enabled: Bool = true, initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(10)) {
            self.enabled = enabled
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
        }
    }

    /// One broker node: where a connection can be opened.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { "\(host):\(port)" }
    }

    /// The nodes of the broker (one, or every node of a cluster). A connection opens to one
    /// of them, in an order shuffled per connection so copies spread over the nodes, and
    /// moves on to the next when it loses its node.
    public var endpoints: [Endpoint]
    /// Whether each connection tries `endpoints` in an order of its own (the default,
    /// which spreads copies of a service over the nodes) or as listed (to prefer a node,
    /// such as the one on the same host, and fall back to the others in turn).
    public var shufflesEndpoints: Bool
    /// The first endpoint's host and port: the only ones for a single broker.
    public var host: String { endpoints[0].host }
    public var port: Int { endpoints[0].port }
    public var vhost: String
    public var user: String
    public var password: String
    /// Whether to connect over TLS (`amqps://`).
    public var useTLS: Bool
    public var tls: TLS
    /// Heartbeat interval in seconds, negotiated with the broker. rabbitmq-c's default is
    /// none, which leaves a dead peer undetected for as long as the kernel's TCP timeout.
    public var heartbeatSeconds: Int
    /// Name shown for the connection in the management UI and `rabbitmqctl list_connections`,
    /// followed there by the node it is open to.
    public var connectionName: String
    /// How long to wait for the TCP connect and the AMQP handshake.
    public var connectTimeout: Duration
    /// How long to wait for the reply to a synchronous method (declare, consume, qos).
    public var rpcTimeout: Duration
    public var recovery: Recovery

    /// Parses an AMQP URI as RabbitMQ documents it: user, password and vhost are
    /// percent-decoded; an empty path means vhost `/`; `%2F` spells `/` explicitly.
    ///
    /// A comma-separated list names the nodes of a cluster
    /// (`amqp://u:p@rabbit-1:5672/,amqp://u:p@rabbit-2:5672/`). They must agree on scheme,
    /// user, password and vhost, which a cluster's nodes share; options (`?heartbeat=`)
    /// are read from every URL, later ones winning.
    public init(url: String) throws {
        let urls = url.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !urls.isEmpty else {
            throw AMQPError(.invalidURL, "the broker URL is empty: use amqp://user:password@host:port/vhost, or several separated by commas for a cluster")
        }
        let parsed = try urls.map(ParsedURL.init)
        let node = parsed[0]
        for other in parsed.dropFirst() where (other.useTLS, other.user, other.password, other.vhost) != (node.useTLS, node.user, node.password, node.vhost) {
            throw AMQPError(
                .invalidURL,
                "the broker URLs '\(node.redacted)' and '\(other.redacted)' differ in scheme, user, password or vhost: the nodes of one cluster share them, so give every URL the same"
            )
        }
        endpoints = parsed.map(\.endpoint)
        shufflesEndpoints = true
        useTLS = node.useTLS
        user = node.user
        password = node.password
        vhost = node.vhost
        tls = TLS()
        heartbeatSeconds = 10
        connectionName = "antifragileflow"
        connectTimeout = .seconds(10)
        rpcTimeout = .seconds(30)
        recovery = Recovery()
        for item in parsed.flatMap(\.options) {
            switch item.name {
            case "heartbeat":
                if let value = item.value.flatMap(Int.init) { heartbeatSeconds = value }
            case "connection_timeout":
                if let value = item.value.flatMap(Int.init) { connectTimeout = .milliseconds(value) }
            case "cacertfile":
                tls.caCertificatePath = item.value
            case "certfile":
                tls.clientCertificatePath = item.value
            case "keyfile":
                tls.clientKeyPath = item.value
            case "verify":
                tls.verifyPeer = item.value != "verify_none"
            default:
                continue
            }
        }
    }

    /// This configuration narrowed to one of its endpoints: what a single connection
    /// attempt uses, so every message it logs or throws names the node.
    public func pinned(to endpoint: Endpoint) -> AMQPConfiguration {
        var pinned = self
        pinned.endpoints = [endpoint]
        pinned.connectionName = "\(connectionName) (\(endpoint))"
        return pinned
    }

    /// One URL of the list, taken apart.
    private struct ParsedURL {
        var useTLS: Bool
        var endpoint: Endpoint
        var user: String
        var password: String
        var vhost: String
        var options: [URLQueryItem]

        init(_ url: String) throws {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
                throw AMQPError(.invalidURL, "'\(url)' is not a URL: use amqp://user:password@host:port/vhost")
            }
            switch scheme {
            case "amqp": useTLS = false
            case "amqps": useTLS = true
            default:
                throw AMQPError(.invalidURL, "URL scheme '\(scheme)' is not supported: use amqp:// or amqps://")
            }
            endpoint = Endpoint(host: components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost", port: components.port ?? (useTLS ? 5671 : 5672))
            user = components.user.map { $0.removingPercentEncoding ?? $0 } ?? "guest"
            password = components.password.map { $0.removingPercentEncoding ?? $0 } ?? "guest"
            let path = components.percentEncodedPath
            if path.isEmpty || path == "/" {
                vhost = "/"
            } else {
                let encoded = String(path.dropFirst())
                guard !encoded.contains("/") else {
                    throw AMQPError(.invalidURL, "URL path '\(path)' has more than one segment: spell vhost '/' as %2F")
                }
                vhost = encoded.removingPercentEncoding ?? encoded
            }
            options = components.queryItems ?? []
        }

        var redacted: String { "\(useTLS ? "amqps" : "amqp")://\(user)@\(endpoint)/" }
    }

    /// The URL without its password, for logs and error messages.
    /// Several endpoints are listed as `AMQP_URL` lists them, separated by commas.
    public var redactedURL: String {
        let encodedVhost = vhost == "/" ? "" : vhost.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? vhost
        return endpoints.map { "\(useTLS ? "amqps" : "amqp")://\(user)@\($0)/\(encodedVhost)" }.joined(separator: ",")
    }
}
