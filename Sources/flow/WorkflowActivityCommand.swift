import ArgumentParser
import FlowCore
import Foundation

extension WorkflowCommandLine {
    /// `flow workflow activity pause|unpause|reset ID POSITION`: an operator's hand on one
    /// activity of a running workflow (docs/workflows.md, "Pausing and resetting an activity").
    struct Activity: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pause, unpause or reset one activity of a running workflow, named by its position (flow workflow show ID lists the commands).",
            subcommands: [Pause.self, Unpause.self, Reset.self]
        )

        struct Target: ParsableArguments {
            @Argument(help: "The workflow id.") var id: String
            @Argument(help: "The activity's command position.") var position: Int
            @Option(help: .hidden) var topologyPrefix: String?
            @OptionGroup var connection: ConnectionOptions

            func send(_ kind: WorkflowCommand.Kind, reason: String? = nil) async throws {
                try await sendCommand(kind, WorkflowCommand.ActivityCommand(workflowID: id, position: position, reason: reason), names: topologyNames(topologyPrefix), connection: connection)
            }
        }

        struct Pause: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Pause an activity: its running attempt is asked to stop (a training job checkpoints), and no attempt is made until it is unpaused."
            )
            @OptionGroup var target: Target
            @Option(help: "Why, for its history.") var reason: String?

            func run() async throws {
                try await target.send(.pauseActivity, reason: reason ?? "paused with flow workflow activity pause")
            }
        }

        struct Unpause: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Unpause an activity: it is sent again, its attempts counting on, with the details its last attempt reported."
            )
            @OptionGroup var target: Target

            func run() async throws { try await target.send(.unpauseActivity) }
        }

        struct Reset: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Reset an activity: its running attempt is asked to stop, and it is sent again from attempt 1 (a parked one too, instead of a dead-letter replay)."
            )
            @OptionGroup var target: Target

            func run() async throws { try await target.send(.resetActivity) }
        }
    }
}
