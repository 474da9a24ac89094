import FlowAMQP
import Testing

@Suite("AMQP URLs")
struct AMQPConfigurationTests {
    @Test("a full URL gives host, port, credentials and vhost, percent-decoded")
    func fullURL() throws {
        let configuration = try AMQPConfiguration(url: "amqp://flow%40svc:p%3Ass@broker.internal:5673/prod%2Fwest?heartbeat=30")
        #expect(configuration.host == "broker.internal")
        #expect(configuration.port == 5673)
        #expect(configuration.user == "flow@svc")
        #expect(configuration.password == "p:ss")
        #expect(configuration.vhost == "prod/west")
        #expect(configuration.heartbeatSeconds == 30)
        #expect(configuration.useTLS == false)
    }

    @Test("an empty path means vhost '/', and %2F spells it explicitly")
    func defaultVhost() throws {
        #expect(try AMQPConfiguration(url: "amqp://localhost").vhost == "/")
        #expect(try AMQPConfiguration(url: "amqp://localhost/").vhost == "/")
        #expect(try AMQPConfiguration(url: "amqp://localhost/%2F").vhost == "/")
    }

    @Test("amqps defaults to port 5671 and verifies the peer")
    func tlsDefaults() throws {
        let configuration = try AMQPConfiguration(url: "amqps://user:pass@secure.example?cacertfile=/etc/ca.pem")
        #expect(configuration.useTLS)
        #expect(configuration.port == 5671)
        #expect(configuration.tls.verifyPeer)
        #expect(configuration.tls.caCertificatePath == "/etc/ca.pem")
    }

    @Test("the redacted URL never shows the password")
    func redaction() throws {
        let configuration = try AMQPConfiguration(url: "amqp://user:secret@host:5672/vh")
        #expect(configuration.redactedURL == "amqp://user@host:5672/vh")
    }

    @Test("other schemes are refused with the schemes that work")
    func badScheme() {
        let error = #expect(throws: AMQPError.self) { try AMQPConfiguration(url: "http://localhost") }
        #expect(error?.code == .invalidURL)
        #expect(error?.message.contains("amqp://") == true)
    }
}

@Suite("AMQP URLs naming the nodes of a cluster")
struct ClusterURLTests {
    @Test("a comma-separated list gives one endpoint per node, sharing credentials, vhost and options")
    func listOfNodes() throws {
        let configuration = try AMQPConfiguration(url: "amqp://flow:secret@rabbit-1:5672/prod, amqp://flow:secret@rabbit-2:5673/prod?heartbeat=30,")
        #expect(configuration.endpoints == [.init(host: "rabbit-1", port: 5672), .init(host: "rabbit-2", port: 5673)])
        #expect(configuration.user == "flow")
        #expect(configuration.vhost == "prod")
        #expect(configuration.heartbeatSeconds == 30)
        #expect(configuration.redactedURL == "amqp://flow@rabbit-1:5672/prod,amqp://flow@rabbit-2:5673/prod")
    }

    @Test("nodes that differ in user, vhost or scheme are refused, without showing the password")
    func nodesMustAgree() {
        for url in [
            "amqp://flow:secret@rabbit-1/prod,amqp://other:secret@rabbit-2/prod",
            "amqp://flow:secret@rabbit-1/prod,amqp://flow:secret@rabbit-2/staging",
            "amqp://flow:secret@rabbit-1/prod,amqps://flow:secret@rabbit-2/prod",
        ] {
            let error = #expect(throws: AMQPError.self) { try AMQPConfiguration(url: url) }
            #expect(error?.code == .invalidURL)
            #expect(error?.message.contains("give every URL the same") == true)
            #expect(error?.message.contains("secret") == false)
        }
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: " , ") }
    }

    @Test("a connection attempt is pinned to one node, and its connection name says which")
    func pinnedToOneNode() throws {
        var configuration = try AMQPConfiguration(url: "amqp://rabbit-1,amqp://rabbit-2:5673")
        configuration.connectionName = "flow worker default"
        let pinned = configuration.pinned(to: configuration.endpoints[1])
        #expect(pinned.endpoints == [.init(host: "rabbit-2", port: 5673)])
        #expect(pinned.connectionName == "flow worker default (rabbit-2:5673)")
        #expect(pinned.redactedURL == "amqp://guest@rabbit-2:5673/")
    }
}
