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
