import ArgumentParser
import FlowAMQP
import FlowClient
import FlowCoordinator
import FlowCore
import Foundation

/// `flow schedule add|list|pause|resume|backfill|remove`.
struct ScheduleCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Run workflows on a schedule.",
        discussion: "A schedule's run missed while the coordinator was down runs once when it is back, not once per missed time (or not at all, "
            + "past its --catchup-window). A run due while the previous one still goes follows --overlap.",
        subcommands: [Add.self, List.self, Remove.self, Pause.self, Resume.self, Backfill.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add (or replace) a schedule.")

        @Argument(help: "The schedule's name.")
        var name: String

        @Option(help: "An interval: 90s, 15m, 1h, 1d.")
        var every: String?

        @Option(help: "A cron expression of five fields, in UTC: \"0 3 * * *\".")
        var cron: String?

        @Option(help: "The workflow to start.")
        var workflow: String

        @Option(help: "The workflow's input: JSON text, or @FILE.")
        var input: String = "{}"

        @Option(help: "When a run is due while the previous one still goes: skip (default), buffer_one, buffer_all, cancel_other or allow_all.")
        var overlap: String?

        @Option(help: "Skip a run found due later than this (after downtime): 90s, 15m, 1h. Default: run it however late.")
        var catchupWindow: String?

        @Option(help: "Start each run up to this much after its time, spread by schedule and time: 30s, 5m.")
        var jitter: String?

        @Flag(help: "Add it paused: it starts nothing until `flow schedule resume`.")
        var paused = false

        @Option(help: .hidden)
        var topologyPrefix: String?

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            if let overlap, OverlapPolicy(rawValue: overlap) == nil {
                throw ValidationError("--overlap must be one of \(OverlapPolicy.allCases.map(\.rawValue).joined(separator: ", ")); got '\(overlap)'")
            }
            let command = WorkflowCommand.AddSchedule(
                name: name, workflow: workflow, input: try readJSONInput(input), everySeconds: try every.map(Self.seconds), cron: cron, overlap: overlap,
                catchupWindowSeconds: try catchupWindow.map(Self.seconds), jitterSeconds: try jitter.map(Self.seconds), paused: paused ? true : nil
            )
            try await sendCommand(.addSchedule, command, names: topologyNames(topologyPrefix), connection: connection)
        }

        static func seconds(_ text: String) throws -> Int64 {
            let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            guard let unit = text.last.flatMap({ units[$0] }), let count = Int64(text.dropLast()), count > 0 else {
                throw ValidationError("a duration is a number and a unit (s, m, h, d), like 15m; got '\(text)'")
            }
            return count * unit
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List schedules and their next run.")
        @OptionGroup var store: CoordinatorStoreOptions

        func run() async throws {
            let schedules = try await store.openForReading().schedules()
            if schedules.isEmpty { print("no schedules") }
            let formatter = ISO8601DateFormatter()
            for schedule in schedules {
                let when = schedule.cron.map { "cron \"\($0)\"" } ?? "every \(schedule.everySeconds ?? 0) s"
                var line = "\(schedule.name)  \(schedule.workflow)  \(when)  next \(formatter.string(from: schedule.nextRunAt))  runs \(schedule.runs)"
                line += "  overlap \(schedule.overlap.rawValue)"
                if schedule.skipped > 0 { line += "  skipped \(schedule.skipped)" }
                if !schedule.buffered.isEmpty { line += "  waiting \(schedule.buffered.count)" }
                if let window = schedule.catchupWindowSeconds { line += "  catch-up \(window) s" }
                if let jitter = schedule.jitterSeconds { line += "  jitter \(jitter) s" }
                if schedule.paused { line += "  PAUSED\(schedule.pauseNote.map { " (\($0))" } ?? "")" }
                print(line)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a schedule.")
        @Argument(help: "The schedule's name.") var name: String
        @Option(help: .hidden) var topologyPrefix: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await sendCommand(.removeSchedule, WorkflowCommand.RemoveSchedule(name: name), names: topologyNames(topologyPrefix), connection: connection)
        }
    }
}

extension ScheduleCommandLine {
    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a schedule: it starts nothing until resumed.")
        @Argument(help: "The schedule's name.") var name: String
        @Option(help: "Why, shown in lists.") var note: String?
        @Option(help: .hidden) var topologyPrefix: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await sendCommand(.pauseSchedule, WorkflowCommand.PauseSchedule(name: name, note: note), names: topologyNames(topologyPrefix), connection: connection)
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a paused schedule; a run it missed meanwhile starts once, within its catch-up window.")
        @Argument(help: "The schedule's name.") var name: String
        @Option(help: .hidden) var topologyPrefix: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await sendCommand(.resumeSchedule, WorkflowCommand.PauseSchedule(name: name), names: topologyNames(topologyPrefix), connection: connection)
        }
    }

    struct Backfill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the runs a schedule would have started between two times (at most 1,000), each under the id it would have had."
        )
        @Argument(help: "The schedule's name.") var name: String
        @Option(help: "From this time (ISO 8601, exclusive): 2026-12-01T00:00:00Z.") var from: String
        @Option(help: "To this time (ISO 8601, inclusive).") var to: String
        @Option(help: .hidden) var topologyPrefix: String?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let formatter = ISO8601DateFormatter()
            guard let start = formatter.date(from: from), let end = formatter.date(from: to) else {
                throw ValidationError("--from and --to are ISO 8601 times, like 2026-12-01T00:00:00Z")
            }
            try await sendCommand(.backfillSchedule, WorkflowCommand.BackfillSchedule(name: name, from: start, to: end), names: topologyNames(topologyPrefix), connection: connection)
        }
    }
}
