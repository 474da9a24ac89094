import ArgumentParser

/// The `flow` command: runs AntifragileFlow's actors and operates its broker.
@main
struct Flow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow",
        abstract: "AntifragileFlow: durable workflows and worker actors on RabbitMQ.",
        subcommands: [
            WorkerCommand.self, CoordinatorCommand.self, WorkflowCommandLine.self, ScheduleCommandLine.self, ActivityCommand.self, StatusCommand.self, ConsoleCommand.self, UpCommand.self, DLQCommand.self, TopologyCommand.self, BrokerCommand.self, StoreCommand.self, SmokeCommand.self, MLCommand.self,
        ]
    )
}
