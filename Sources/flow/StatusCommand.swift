import ArgumentParser
import FlowAMQP
import FlowCore

/// `flow status`: the queues at a glance.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each work queue's ready messages and consumers, and the dead-letter count."
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: .hidden)
    var topologyPrefix: String?

    func run() async throws {
        let logger = connection.logger(label: "flow.status")
        let amqp = try await connection.connect(as: "flow status", logger: logger)
        let names = topologyNames(topologyPrefix)
        let queues = WorkQueue.allCases.map(names.queue) + [names.coordinatorReplyQueue, names.name(Topology.workflowCommandQueue), names.deadLetterQueue]
        let width = max(20, (queues.map(\.count).max() ?? 0) + 1)
        print("queue".padding(toLength: width, withPad: " ", startingAt: 0) + "   ready  consumers")
        for name in queues {
            do {
                let status = try await amqp.inspectQueue(name)
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + String(status.messageCount).leftPadded(8) + String(status.consumerCount).leftPadded(11))
            } catch let error as AMQPError {
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + error.message)
            }
        }
        await amqp.close()
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
