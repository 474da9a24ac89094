import ArgumentParser
import FlowAMQP
import FlowContracts
import FlowCore
import FlowDefaultActivities
import FlowMLActivities
import FlowOpenAIActivities
import Foundation

/// `flow activity run NAME`: publishes one activity and prints its reply.
struct ActivityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activity",
        abstract: "Run activities by hand.",
        subcommands: [Run.self]
    )

    /// Which queue runs each activity this build knows. Activities of other builds can be
    /// run with --queue.
    static let knownActivities: [String: WorkQueue] = Dictionary(
        uniqueKeysWithValues: AllContracts.all.map { ($0.name, $0.queue) }
    )

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish one activity, wait for its reply and print the output (exit status 1 when it failed)."
        )

        @Argument(help: "The activity's name, e.g. health_check.")
        var name: String

        @Option(help: "The input: JSON text, or @FILE to read it from a file.")
        var input: String = "{}"

        @Option(help: "The queue (default, ml or openai); needed only for activities this build does not know.")
        var queue: String?

        @Option(help: "The message id (idempotency key); a new one by default.")
        var messageID: String?

        @Option(help: "Seconds to wait for the reply.")
        var timeout: Int = 120

        @Flag(help: "Publish and return without waiting for the reply.")
        var noWait = false

        @Option(help: .hidden)
        var topologyPrefix: String?

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let workQueue: WorkQueue
            if let queue {
                guard let named = WorkQueue(workerName: queue) else { throw ValidationError("unknown queue '\(queue)': use default, ml or openai") }
                workQueue = named
            } else if let known = ActivityCommand.knownActivities[name] {
                workQueue = known
            } else {
                throw ValidationError("activity '\(name)' is not one this build knows (\(ActivityCommand.knownActivities.keys.sorted().joined(separator: ", "))): pass --queue")
            }
            let body: Data
            if input.hasPrefix("@") {
                guard let contents = FileManager.default.contents(atPath: String(input.dropFirst())) else {
                    throw ValidationError("cannot read input file \(input.dropFirst())")
                }
                body = contents
            } else {
                body = Data(input.utf8)
            }
            do {
                _ = try JSONValue(parsing: body)
            } catch {
                throw ValidationError("--input is not JSON")
            }

            let names = topologyNames(topologyPrefix)
            let logger = connection.logger(label: "flow.activity")
            let amqp = try await connection.connect(as: "flow activity run", logger: logger)
            do {
                try await publishAndWait(amqp: amqp, queue: workQueue, names: names, body: body)
            } catch {
                await amqp.close()
                throw error
            }
            await amqp.close()
        }

        private func publishAndWait(amqp: AMQPConnection, queue workQueue: WorkQueue, names: TopologyNames, body: Data) async throws {
            let messageID = messageID ?? UUID().uuidString.lowercased()
            let replyQueue = "flow.cli.replies.\(UUID().uuidString.prefix(8).lowercased())"
            var replies: AMQPConsumer?
            if !noWait {
                try await amqp.declare(Topology(queues: [.init(name: replyQueue, durable: false, exclusive: true, autoDelete: true)]))
                replies = try await amqp.consume(queue: replyQueue, prefetch: 16)
            }
            let properties = AMQPProperties(
                contentType: FlowProtocol.contentType, headers: [FlowProtocol.Header.protocolVersion: .int(FlowProtocol.version)],
                deliveryMode: 2, correlationID: messageID, replyTo: noWait ? nil : replyQueue, messageID: messageID,
                timestamp: UInt64(Date().timeIntervalSince1970), type: name
            )
            do {
                try await amqp.publish(AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(workQueue), properties: properties, body: Array(body)))
            } catch let error as AMQPError {
                throw ValidationError(error.message)
            }
            guard let replies else {
                print(messageID)
                return
            }
            let reply = try await withThrowingTaskGroup(of: ActivityReply?.self) { group in
                group.addTask {
                    for try await delivery in replies {
                        try await delivery.ack()
                        let reply = try FlowJSON.decode(ActivityReply.self, from: delivery.body)
                        if reply.status == .progress {
                            FileHandle.standardError.write(Data("progress: \(reply.progress?.text ?? "{}")\n".utf8))
                            continue
                        }
                        return reply
                    }
                    return nil
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeout))
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            replies.cancel()
            guard let reply else {
                throw ValidationError("no reply within \(timeout) s for message \(messageID): is `flow worker \(workQueue.workerName)` running? (`flow status` shows consumers)")
            }
            if reply.status == .completed {
                print(reply.output?.text ?? "null")
            } else {
                let error = reply.error
                FileHandle.standardError.write(Data("\(name) failed: \(error?.type ?? "Error"): \(error?.message ?? "no details")\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
