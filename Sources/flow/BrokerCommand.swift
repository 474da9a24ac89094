import ArgumentParser
import FlowAMQP
import FlowCore

/// `flow broker check`: can this machine reach the broker, and is the topology there?
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Check the broker.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect, then look up every queue of the topology; exits non-zero with the reason when one is missing."
        )

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let logger = connection.logger(label: "flow.broker")
            let amqp = try await connection.connect(as: "flow broker check", logger: logger)
            var missing: [String] = []
            for queue in Topology.flow(workQueues: WorkerCommand.profiles.map(\.queue)).queues {
                do {
                    let status = try await amqp.inspectQueue(queue.name)
                    print("\(queue.name): \(status.messageCount) ready, \(status.consumerCount) consumers")
                } catch let error as AMQPError where error.code == .notFound {
                    missing.append(queue.name)
                    print("\(queue.name): missing")
                }
            }
            await amqp.close()
            if !missing.isEmpty {
                throw ValidationError("\(missing.count) queues are missing on \(amqp.configuration.redactedURL): run `flow topology declare` or broker/start")
            }
            print("broker at \(amqp.configuration.redactedURL) is reachable and has the whole topology")
        }
    }
}
