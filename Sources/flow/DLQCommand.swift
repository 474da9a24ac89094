import ArgumentParser
import FlowAMQP
import FlowCore
import FlowDeadLetters
import Foundation

/// `flow dlq`: inspect and replay the dead-letter queue, safely.
struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect, replay, purge, export and import dead-lettered messages.",
        discussion: """
            Every subcommand holds the dead-letter queue's messages while it works and returns those it \
            did not remove, so killing it at any moment loses nothing. Replays and purges are written \
            to the audit log ($FLOW_AUDIT_LOG, then .flow/audit/dlq.jsonl).
            """,
        subcommands: [List.self, Show.self, Replay.self, Purge.self, Export.self, Import.self]
    )

    /// The selection flags every subcommand shares.
    struct Filters: ParsableArguments {
        @Option(help: "Only messages that died in this queue.") var queue: String?
        @Option(help: "Only this activity.") var activity: String?
        @Option(help: "Only this reason: rejected, expired, delivery_limit, failed, or an error type.") var reason: String?
        @Option(help: "Only messages whose error type or message contains this text.") var error: String?
        @Option(help: "Only messages dead-lettered longer ago than this (30s, 15m, 2h, 7d).") var olderThan: String?
        @Option(help: "Only messages dead-lettered more recently than this.") var newerThan: String?
        @Option(help: "Only this message id.") var messageID: String?
        @Option(help: "Only messages of this workflow.") var workflow: String?

        func filter() throws -> DeadLetterFilter {
            func age(_ text: String?, _ flag: String) throws -> Duration? {
                guard let text else { return nil }
                guard let duration = DeadLetterFilter.parseAge(text) else { throw ValidationError("--\(flag) takes an age like 30s, 15m, 2h or 7d, got '\(text)'") }
                return duration
            }
            return DeadLetterFilter(
                queue: queue, activity: activity, reason: reason, error: error, olderThan: try age(olderThan, "older-than"),
                newerThan: try age(newerThan, "newer-than"), messageID: messageID, workflowID: workflow
            )
        }
    }

    struct Shared: ParsableArguments {
        @OptionGroup var connection: ConnectionOptions
        @Option(help: .hidden) var topologyPrefix: String?
        @Option(help: "Who runs this, for the audit log (default: $USER).") var operatorName: String?

        /// Runs `body` with the dead-letter queue, and closes the connection however it ends.
        func withQueue<Result: Sendable>(_ body: (DeadLetterQueue) async throws -> Result) async throws -> Result {
            let environment = ProcessInfo.processInfo.environment
            let logger = connection.logger(label: "flow.dlq")
            let amqp = try await connection.connect(as: "flow dlq", logger: logger)
            let auditFile = URL(fileURLWithPath: environment["FLOW_AUDIT_LOG"] ?? ".flow/audit/dlq.jsonl")
            let names = topologyNames(topologyPrefix)
            let dlq = DeadLetterQueue(transport: amqp, names: names, audit: AuditLog(file: auditFile))
            do {
                let result = try await body(dlq)
                await amqp.close()
                return result
            } catch {
                await amqp.close()
                throw error
            }
        }

        var who: String { operatorName ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown" }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per dead-lettered message; leaves every message where it is.")
        @OptionGroup var filters: Filters
        @OptionGroup var shared: Shared
        @Flag(help: "JSON lines, for scripts.") var json = false

        func run() async throws {
            let filter = try filters.filter()
            let letters = try await shared.withQueue { try await $0.list(filter) }
            for letter in letters {
                if json {
                    print(try FlowJSON.encodeText(letter))
                } else {
                    let when = letter.deadLetteredAt.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
                    let error = [letter.errorType, letter.error].compactMap { $0 }.joined(separator: ": ")
                    print("\(when)  \(letter.queue ?? "-")  \(letter.activity ?? "-")  \(letter.reason)  attempts=\(letter.attempts.map(String.init) ?? "-")  replays=\(letter.replays)  id=\(letter.id)  workflow=\(letter.workflowID ?? "-")  \(error)")
                }
            }
            if !json { print("\(letters.count) message\(letters.count == 1 ? "" : "s")") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything about one message: properties, headers, death history, body.")
        @Argument(help: "The message id (or the id `list` shows).") var id: String
        @OptionGroup var shared: Shared

        func run() async throws {
            let text = try await shared.withQueue { dlq in
                try await dlq.withHeldMessages { letters -> String? in
                    guard let letter = letters.first(where: { $0.messageID == id || $0.displayID == id }) else { return nil }
                    return describe(letter)
                }
            }
            guard let text else { throw ValidationError("no message with id \(id) in the dead-letter queue") }
            print(text)
        }

        func describe(_ letter: DeadLetter) -> String {
            var lines = ["id: \(letter.displayID)", "queue: \(letter.originalQueue ?? "-")", "activity: \(letter.activity ?? "-")", "reason: \(letter.reason)"]
            if let type = letter.errorType { lines.append("error: \(type): \(letter.errorMessage ?? "")") }
            lines.append("attempts: \(letter.attempts.map(String.init) ?? "-"), replays: \(letter.replayCount)")
            let history = letter.deathHistory
            if !history.isEmpty { lines.append("death history (oldest first):"); lines += history.map { "  \($0)" } }
            let p = letter.delivery.properties
            lines.append("properties:")
            for (key, value) in [
                ("type", p.type), ("message_id", p.messageID), ("correlation_id", p.correlationID), ("reply_to", p.replyTo),
                ("content_type", p.contentType), ("delivery_mode", p.deliveryMode.map(String.init)), ("timestamp", p.timestamp.map(String.init)),
            ] {
                if let value { lines.append("  \(key): \(value)") }
            }
            lines.append("headers:")
            for key in (p.headers ?? [:]).keys.sorted() where key != "x-death" {
                lines.append("  \(key): \(p.headers?[key]?.stringValue ?? "\(p.headers![key]!)")")
            }
            lines.append("body:")
            if let value = try? JSONValue(parsing: letter.delivery.body), let pretty = try? FlowJSON.encodeText(value, pretty: true) {
                lines.append(pretty)
            } else {
                lines.append(String(decoding: letter.delivery.body, as: UTF8.self))
            }
            return lines.joined(separator: "\n")
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send the selected messages back to the queue each died in, with confirms.")
        @OptionGroup var filters: Filters
        @OptionGroup var shared: Shared
        @Option(help: "At most this many messages.") var limit: Int?
        @Option(help: "Send them to this queue instead of the one each died in.") var toQueue: String?
        @Option(help: "At most this many messages per second.") var rate: Double?
        @Option(help: "Refuse messages replayed this many times already (default: $FLOW_MAX_REPLAYS, then 5).") var maxReplays: Int?
        @Flag(help: "Replay even messages over the replay limit.") var force = false
        @Flag(help: "Show what would be replayed and change nothing.") var dryRun = false

        func run() async throws {
            let maximum = maxReplays ?? ProcessInfo.processInfo.environment["FLOW_MAX_REPLAYS"].flatMap(Int.init) ?? 5
            let filter = try filters.filter()
            let report = try await shared.withQueue { dlq in
                try await dlq.replay(
                    filter, limit: limit, targetQueue: toQueue, ratePerSecond: rate, maximumReplays: maximum, force: force,
                    dryRun: dryRun, operatorName: shared.who
                )
            }
            for (id, queue) in report.replayed { print("\(dryRun ? "would replay" : "replayed") \(id) -> \(queue)") }
            for (id, reason) in report.refused { print("refused \(id): \(reason)") }
            print("\(report.replayed.count) \(dryRun ? "would be replayed" : "replayed"), \(report.refused.count) refused")
            if !report.refused.isEmpty { throw ExitCode(2) }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the selected messages for good.")
        @OptionGroup var filters: Filters
        @OptionGroup var shared: Shared
        @Flag(help: "Confirm the deletion.") var yes = false

        func run() async throws {
            guard yes else { throw ValidationError("purge deletes messages for good: add --yes (see them first with `flow dlq list` and the same filters)") }
            let filter = try filters.filter()
            let purged = try await shared.withQueue { try await $0.purge(filter, operatorName: shared.who) }
            print("purged \(purged.count) message\(purged.count == 1 ? "" : "s")")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the selected messages to a JSON-lines file, leaving them in the queue.")
        @Argument(help: "The file to write.") var file: String
        @OptionGroup var filters: Filters
        @OptionGroup var shared: Shared

        func run() async throws {
            let filter = try filters.filter()
            let count = try await shared.withQueue { try await $0.export(filter, to: URL(fileURLWithPath: file)) }
            print("exported \(count) message\(count == 1 ? "" : "s") to \(file)")
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish the messages of an export file into the dead-letter queue.")
        @Argument(help: "The file to read.") var file: String
        @OptionGroup var shared: Shared

        func run() async throws {
            let (count, queue) = try await shared.withQueue { dlq in
                (try await dlq.importMessages(from: URL(fileURLWithPath: file), operatorName: shared.who), dlq.queueName)
            }
            print("imported \(count) message\(count == 1 ? "" : "s") into \(queue)")
        }
    }
}
