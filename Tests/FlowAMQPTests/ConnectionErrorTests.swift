import FlowAMQP
import FlowCore
import FlowTesting
import Testing

@Suite("connection failures name their cause and the fix")
struct ConnectionErrorTests {
    @Test("wrong credentials are reported as refused, naming the user")
    func wrongCredentials() async throws {
        let configuration = try AMQPConfiguration(url: TestBroker.url.replacingOccurrences(of: "guest:guest", with: "guest:wrong-password"))
        let error = await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration, logger: TestBroker.logger)
        }
        #expect(error?.code == .accessRefused)
        #expect(error?.message.contains("refused user 'guest'") == true)
        #expect(error?.message.contains("wrong-password") == false)
    }

    @Test("a vhost that does not exist is reported with the command that creates it")
    func missingVhost() async throws {
        let configuration = try AMQPConfiguration(url: TestBroker.url + "no-such-vhost")
        let error = await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration, logger: TestBroker.logger)
        }
        #expect(error?.code == .vhostNotAllowed)
        #expect(error?.message.contains("rabbitmqctl add_vhost no-such-vhost") == true)
    }

    @Test("no broker at the address is reported as unreachable, with how to start one")
    func brokerNotRunning() async throws {
        // Port 1 on loopback: nothing listens there, and the kernel refuses at once.
        let configuration = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:1/")
        let error = await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration, logger: TestBroker.logger)
        }
        #expect(error?.code == .brokerUnreachable)
        #expect(error?.message.contains("127.0.0.1:1") == true)
        #expect(error?.message.contains("broker/start") == true)
    }

    @Test("consuming a queue that does not exist fails with notFound and the fix")
    func missingQueue() async throws {
        let connection = try await TestBroker.connect()
        let error = await #expect(throws: AMQPError.self) {
            _ = try await connection.consume(queue: "no-such-queue-\(TestBroker.uniqueName("q"))", prefetch: 1)
        }
        #expect(error?.code == .notFound)
        #expect(error?.message.contains("flow topology declare") == true)
        // The connection is still usable after the failed consume.
        let queue = TestBroker.uniqueName("after-missing")
        try await connection.declare(Topology(queues: [.init(name: queue, durable: false, autoDelete: true)]))
        #expect(try await connection.inspectQueue(queue).messageCount == 0)
        await connection.close()
    }

    @Test("declaring a queue that exists with other arguments fails with preconditionFailed")
    func conflictingDeclaration() async throws {
        let connection = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("conflict")
        try await connection.declare(Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "quorum"])]))
        let error = await #expect(throws: AMQPError.self) {
            try await connection.declare(Topology(queues: [.init(name: queue, arguments: ["x-queue-type": "classic"])]))
        }
        #expect(error?.code == .preconditionFailed)
        try await connection.deleteQueue(queue)
        await connection.close()
    }
}
