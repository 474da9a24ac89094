import ArgumentParser
import FlowAMQP
import FlowCore
import Foundation

/// Sends commands to the coordinator's `workflow-commands` queue and reads its answers on
/// a private reply queue that disappears with the connection.
struct CommandClient {
    let amqp: AMQPConnection
    let names: TopologyNames
    let replyQueue: String
    let replies: AMQPConsumer

    static func open(connection: ConnectionOptions, names: TopologyNames, as name: String) async throws -> CommandClient {
        let logger = connection.logger(label: "flow.workflow")
        let amqp = try await connection.connect(as: name, logger: logger)
        let replyQueue = "flow.cli.replies.\(UUID().uuidString.prefix(8).lowercased())"
        do {
            try await amqp.declare(Topology(queues: [.init(name: replyQueue, durable: false, exclusive: true, autoDelete: true)]))
            let replies = try await amqp.consume(queue: replyQueue, prefetch: 16)
            return CommandClient(amqp: amqp, names: names, replyQueue: replyQueue, replies: replies)
        } catch {
            await amqp.close()
            throw error
        }
    }

    /// Publishes a command (confirmed by the broker); the answer comes to ``replyQueue``.
    func send<Body: Encodable>(_ kind: WorkflowCommand.Kind, _ body: Body, correlationID: String) async throws {
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: [FlowProtocol.Header.protocolVersion: .int(FlowProtocol.version)],
            deliveryMode: 2, correlationID: correlationID, replyTo: replyQueue, messageID: correlationID,
            timestamp: UInt64(Date().timeIntervalSince1970), type: kind.rawValue
        )
        do {
            try await amqp.publish(
                AMQPMessage(routingKey: names.name(Topology.workflowCommandQueue), properties: properties, body: try FlowJSON.encodeBytes(body))
            )
        } catch let error as AMQPError {
            throw ValidationError(error.message)
        }
    }

    /// The answers, in order, until `accept` returns a value or `timeout` passes (nil).
    func awaitAnswer<Value: Sendable>(timeout: Duration, _ accept: @escaping @Sendable (AMQPDelivery) throws -> Value?) async throws -> Value? {
        let replies = self.replies
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                for try await delivery in replies {
                    try await delivery.ack()
                    if let value = try accept(delivery) { return value }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    func close() async {
        replies.cancel()
        await amqp.close()
    }
}

extension CommandClient {
    /// Sends a command whose answer is a ``CommandAnswer`` and waits for that answer (nil
    /// when none comes within 30 s).
    func ask<Body: Encodable>(_ kind: WorkflowCommand.Kind, _ body: Body) async throws -> CommandAnswer? {
        let correlationID = UUID().uuidString.lowercased()
        try await send(kind, body, correlationID: correlationID)
        return try await awaitAnswer(timeout: .seconds(30)) { delivery -> CommandAnswer? in
            guard delivery.properties.correlationID == correlationID else { return nil }
            return try? FlowJSON.decode(CommandAnswer.self, from: delivery.body)
        }
    }
}

/// Sends one command whose answer is a ``CommandAnswer``, prints the answer, and exits 1
/// when the coordinator refused it.
func sendCommand<Body: Encodable>(_ kind: WorkflowCommand.Kind, _ body: Body, names: TopologyNames, connection: ConnectionOptions) async throws {
    let client = try await CommandClient.open(connection: connection, names: names, as: "flow \(kind.rawValue)")
    let answer: CommandAnswer?
    do {
        answer = try await client.ask(kind, body)
    } catch {
        await client.close()
        throw error
    }
    await client.close()
    guard let answer else { throw ValidationError("no answer within 30 s: is `flow coordinator` running?") }
    print(answer.message)
    if !answer.accepted { throw ExitCode(1) }
}

/// `--input JSON` or `--input @FILE`, checked to be JSON.
func readJSONInput(_ input: String) throws -> JSONText {
    let text: String
    if input.hasPrefix("@") {
        guard let contents = FileManager.default.contents(atPath: String(input.dropFirst())) else {
            throw ValidationError("cannot read input file \(input.dropFirst())")
        }
        text = String(decoding: contents, as: UTF8.self)
    } else {
        text = input
    }
    do {
        return try JSONText(validating: text)
    } catch {
        throw ValidationError("--input is not JSON: \(error)")
    }
}
