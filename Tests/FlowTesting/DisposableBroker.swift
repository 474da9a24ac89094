import FlowAMQP
import Foundation

/// A RabbitMQ node of its own, on its own ports, for tests that restart the broker or
/// close its connections and so must not disturb the tests sharing the main broker.
/// Started and stopped with the repository's own `broker/start` and `broker/stop`.
public final class DisposableBroker: Sendable {
    public let port: Int
    public let directory: String
    private let extraConfiguration: String?

    public var url: String { "amqp://guest:guest@127.0.0.1:\(port)/" }

    private var environment: [String: String] {
        var environment = ["FLOW_BROKER_PORT": String(port), "FLOW_BROKER_DIR": directory]
        if let extraConfiguration { environment["FLOW_BROKER_EXTRA_CONFIG"] = extraConfiguration }
        return environment
    }

    /// Starts a node on `port`, with its files in a temporary folder of that port. A node
    /// left running there by a test run that was killed is stopped and wiped first.
    public init(port: Int, extraConfiguration: String? = nil) async throws {
        self.port = port
        self.extraConfiguration = extraConfiguration
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("flow-test-broker-\(port)").path
        _ = try await ProcessRunner.run(Repository.file("broker/stop").path, ["--wipe"], environment: environment)
        let result = try await ProcessRunner.run(Repository.file("broker/start").path, [], environment: environment)
        guard result.status == 0 else {
            throw AMQPError(.brokerUnreachable, "broker/start on port \(port) failed: \(result.standardError)\(result.standardOutput)")
        }
    }

    /// Runs `body` with a node started on `port` for it, and stops the node after, whether
    /// `body` returned or threw.
    public static func with<Result: Sendable>(
        port: Int, extraConfiguration: String? = nil, _ body: (DisposableBroker) async throws -> Result
    ) async throws -> Result {
        let node = try await DisposableBroker(port: port, extraConfiguration: extraConfiguration)
        return try await withCleanup { try await body(node) } cleanup: { await node.stop() }
    }

    /// Runs `rabbitmqctl` against this node.
    @discardableResult
    public func control(_ arguments: String...) async throws -> ProcessOutput {
        let result = try await ProcessRunner.run(Repository.file("broker/ctl").path, arguments, environment: environment)
        guard result.status == 0 else {
            throw AMQPError(.brokerError, "rabbitmqctl \(arguments.joined(separator: " ")) failed: \(result.standardError)")
        }
        return result
    }

    /// Stops the node and deletes its files.
    public func stop() async {
        _ = try? await ProcessRunner.run(Repository.file("broker/stop").path, ["--wipe"], environment: environment)
    }
}
