import ArgumentParser
import FlowAMQP
import FlowConsole
import FlowCore
import Foundation

/// `flow status`: the queues at a glance.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each queue's ready and unacknowledged messages and its consumers.",
        discussion: """
            Ready counts and consumers come over AMQP; unacknowledged counts (messages workers hold) come from \
            RabbitMQ's management API, and are shown as ? when it cannot be reached.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The management API (default: $FLOW_MANAGEMENT_URL, then http://<broker host>:<AMQP port + 10000>, which is 15672 for 5672).")
    var managementURL: String?

    @Option(help: .hidden)
    var topologyPrefix: String?

    func run() async throws {
        let logger = connection.logger(label: "flow.status")
        let amqpConfiguration = try connection.configuration(connectionName: "flow status")
        let amqp = try await connection.connect(as: "flow status", logger: logger)
        let names = topologyNames(topologyPrefix)
        let queues = names.workQueues.map(names.queue) + [names.coordinatorReplyQueue, names.name(Topology.workflowCommandQueue), names.deadLetterQueue]
        let management = ManagementAPI(
            baseURL: managementURL ?? ProcessInfo.processInfo.environment["FLOW_MANAGEMENT_URL"]
                ?? "http://\(amqpConfiguration.host):\(amqpConfiguration.port + 10000)",
            user: amqpConfiguration.user, password: amqpConfiguration.password, vhost: amqpConfiguration.vhost
        )
        let width = max(20, (queues.map(\.count).max() ?? 0) + 1)
        print("queue".padding(toLength: width, withPad: " ", startingAt: 0) + "   ready   unacked  consumers")
        var managementProblem: String?
        for name in queues {
            do {
                let status = try await amqp.inspectQueue(name)
                var unacked = "?"
                if managementProblem == nil {
                    do {
                        // Counts are refreshed every few seconds; a just-declared queue has none yet.
                        unacked = String(try await management.queue(name).messagesUnacknowledged ?? 0)
                    } catch {
                        managementProblem = "\(error)"
                    }
                }
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + String(status.messageCount).leftPadded(8) + unacked.leftPadded(10) + String(status.consumerCount).leftPadded(11))
            } catch let error as AMQPError {
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + error.message)
            }
        }
        if let managementProblem {
            print("unacked: \(managementProblem)")
        }
        await amqp.close()
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
