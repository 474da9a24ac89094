import FlowAMQP
import FlowCore
import Foundation
import Logging

/// The RabbitMQ server the integration tests use: the one `.ci/run` and the README's test
/// command start with `broker/start`, or `FLOW_TEST_AMQP_URL`.
///
/// There is no skipping: when no broker answers, each test fails with the reason and the
/// command that starts one.
public enum TestBroker {
    /// The broker's URL.
    public static var url: String {
        ProcessInfo.processInfo.environment["FLOW_TEST_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
    }

    /// A logger for test connections; quiet unless `FLOW_TEST_LOG_LEVEL` says otherwise.
    public static var logger: Logger {
        var logger = Logger(label: "flow.tests")
        logger.logLevel = ProcessInfo.processInfo.environment["FLOW_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }

    /// A configuration for the test broker with a connection name that says which test made it.
    public static func configuration(name: String = "flow tests", url: String = TestBroker.url) throws -> AMQPConfiguration {
        var configuration = try AMQPConfiguration(url: url)
        configuration.connectionName = name
        configuration.recovery.initialDelay = .milliseconds(50)
        configuration.recovery.maximumDelay = .seconds(1)
        return configuration
    }

    /// Connects to the test broker, or throws an error that says how to start one.
    public static func connect(name: String = "flow tests", url: String = TestBroker.url) async throws -> AMQPConnection {
        do {
            return try await AMQPConnection.connect(try configuration(name: name, url: url), logger: logger)
        } catch let error as AMQPError where error.code == .brokerUnreachable {
            throw AMQPError(error.code, "integration tests need RabbitMQ: run broker/start (or set FLOW_TEST_AMQP_URL). \(error.message)")
        }
    }

    /// A name no other test run uses, for queues and exchanges a test declares itself.
    public static func uniqueName(_ purpose: String) -> String {
        "test.\(purpose).\(UUID().uuidString.prefix(8).lowercased())"
    }
}
