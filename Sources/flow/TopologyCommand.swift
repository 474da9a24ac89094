import ArgumentParser
import FlowAMQP
import FlowCore

/// `flow topology`: the exchanges and queues AntifragileFlow needs.
struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Declare or print the broker topology.",
        subcommands: [Declare.self, Definitions.self]
    )

    struct Declare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Declare every exchange, queue and binding (idempotent).")

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let logger = connection.logger(label: "flow.topology")
            let amqp = try await connection.connect(as: "flow topology declare", logger: logger)
            let topology = Topology.flow(workQueues: WorkerCommand.profiles.map(\.queue))
            do {
                try await amqp.declare(topology)
            } catch let error as AMQPError {
                await amqp.close()
                throw ValidationError(error.message)
            }
            await amqp.close()
            print("declared \(topology.exchanges.count) exchanges, \(topology.queues.count) queues and \(topology.bindings.count) bindings on vhost \(amqp.configuration.vhost)")
        }
    }

    struct Definitions: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the topology in RabbitMQ's definitions format (the source of broker/definitions.json)."
        )

        @Option(help: "The vhost the definitions name.")
        var vhost: String = "/"

        func run() throws {
            print(String(decoding: try Topology.flow(workQueues: WorkerCommand.profiles.map(\.queue)).definitionsJSON(vhost: vhost), as: UTF8.self))
        }
    }
}
