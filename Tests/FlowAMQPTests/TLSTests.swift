import FlowAMQP
import FlowCore
import FlowTesting
import Foundation
import Testing

/// amqps:// against a node of our own with a TLS listener and certificates made here.
@Suite("TLS connections", .serialized)
struct TLSTests {
    /// A CA, a server certificate for localhost signed by it, and an unrelated CA.
    struct Certificates {
        let folder: URL
        var ca: String { folder.appendingPathComponent("ca.pem").path }
        var otherCA: String { folder.appendingPathComponent("other-ca.pem").path }
        var certificate: String { folder.appendingPathComponent("server.pem").path }
        var key: String { folder.appendingPathComponent("server.key").path }

        init() async throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-tls-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let script = """
            set -e
            cd '\(folder.path)'
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=flow test CA' -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=unrelated CA' -keyout other-ca.key -out other-ca.pem 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null
            chmod 644 server.key
            """
            let result = try await ProcessRunner.run("/bin/bash", ["-c", script])
            guard result.status == 0 else { throw AMQPError(.tlsFailure, "openssl failed: \(result.standardError)") }
        }
    }

    @Test("amqps with the CA that signed the broker's certificate connects, publishes and consumes; another CA is refused")
    func tlsRoundTrip() async throws {
        let certificates = try await Certificates()
        defer { try? FileManager.default.removeItem(at: certificates.folder) }
        let tlsPort = 5788
        let fragment = certificates.folder.appendingPathComponent("tls.conf")
        try """
        listeners.ssl.default = 127.0.0.1:\(tlsPort)
        ssl_options.cacertfile = \(certificates.ca)
        ssl_options.certfile = \(certificates.certificate)
        ssl_options.keyfile = \(certificates.key)
        ssl_options.verify = verify_none
        ssl_options.fail_if_no_peer_cert = false
        """.write(to: fragment, atomically: true, encoding: .utf8)
        try await DisposableBroker.with(port: 5787, extraConfiguration: fragment.path) { node in

            var configuration = try TestBroker.configuration(name: "tls test", url: "amqps://guest:guest@localhost:\(tlsPort)/")
            configuration.tls.caCertificatePath = certificates.ca
            // The node's first TLS handshake (RSA in Erlang) beside the whole parallel suite on
            // two cores took over the default 10 s once; this test is about trust, not speed.
            configuration.connectTimeout = .seconds(60)
            let connection = try await AMQPConnection.connect(configuration, logger: TestBroker.logger)
            let queue = TestBroker.uniqueName("tls")
            try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            try await connection.publish(AMQPMessage(routingKey: queue, body: Array("over tls".utf8)))
            var iterator = consumer.makeAsyncIterator()
            let delivery = try #require(try await iterator.next())
            #expect(delivery.body == Array("over tls".utf8))
            try await delivery.ack()
            consumer.cancel()
            await connection.close()

            configuration.tls.caCertificatePath = certificates.otherCA
            let error = await #expect(throws: AMQPError.self) {
                _ = try await AMQPConnection.connect(configuration, logger: TestBroker.logger)
            }
            #expect(error?.code == .tlsFailure)
        }
    }
}
