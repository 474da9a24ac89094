import FlowCore
import FlowObservability
import FlowTransport
import Foundation
import ServiceContextModule
import Logging

/// Asks the coordinator questions, gives it commands and calls activities over the broker,
/// from any process that reaches it: the CLI, the console, other Swift services.
///
/// Requests go to `workflow-commands`; answers come to a private, exclusive reply queue
/// that disappears with the connection, matched to their request by correlation id, so
/// any number of requests can be in flight at once. Use it inside
/// ``withClient(transport:names:logger:_:)``, which routes the answers while the body runs.
public actor CoordinatorClient {
    /// The coordinator did not answer in time.
    public struct NoAnswer: Error, CustomStringConvertible {
        public var request: String
        public var timeout: Duration
        public var description: String { "no answer to \(request) within \(timeout): is `flow coordinator` running against this broker?" }
    }

    /// The coordinator answered that it could not do or answer this.
    public struct Refused: Error, CustomStringConvertible {
        public var request: String
        public var message: String
        public var description: String { message }
    }

    public nonisolated let replyQueue: String
    private let transport: any MessageTransport
    private let names: TopologyNames
    private let logger: Logger
    /// Requests published and not yet answered, with the task waiting for each.
    private var pending: Set<String> = []
    private var waiting: [String: CheckedContinuation<AMQPDelivery, any Error>] = [:]
    /// Answers that came before their request's task started waiting.
    private var early: [String: AMQPDelivery] = [:]

    init(transport: any MessageTransport, names: TopologyNames, logger: Logger) {
        self.transport = transport
        self.names = names
        self.logger = logger
        self.replyQueue = names.name("flow.client.replies.\(UUID().uuidString.prefix(12).lowercased())")
    }

    /// Declares the reply queue, runs `body` with a client while its answers are routed,
    /// and removes the queue after.
    public static func withClient<Result: Sendable>(
        transport: any MessageTransport, names: TopologyNames, logger: Logger,
        _ body: @Sendable (CoordinatorClient) async throws -> Result
    ) async throws -> Result {
        let client = CoordinatorClient(transport: transport, names: names, logger: logger)
        try await transport.declare(Topology(queues: [.init(name: client.replyQueue, durable: false, exclusive: true, autoDelete: true)]))
        let answers = try await transport.consume(queue: client.replyQueue, prefetch: 64)
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                for try await delivery in answers {
                    try? await delivery.ack()
                    await client.route(delivery)
                }
                return nil
            }
            defer { answers.cancel() }
            let result = try await body(client)
            group.cancelAll()
            answers.cancel()
            return result
        }
    }

    /// Asks a query and decodes its answer.
    public func query<Answer: Decodable & Sendable>(_ kind: WorkflowQuery.Kind, _ body: some Encodable & Sendable, as type: Answer.Type, timeout: Duration = .seconds(15)) async throws -> Answer {
        let delivery = try await request(kind.rawValue, body: try FlowJSON.encodeBytes(body), timeout: timeout)
        if delivery.properties.type == CommandAnswer.messageType {
            let answer = try FlowJSON.decode(CommandAnswer.self, from: delivery.body)
            throw Refused(request: kind.rawValue, message: answer.message)
        }
        do {
            return try FlowJSON.decode(type, from: delivery.body)
        } catch let error as DecodingError {
            throw Refused(request: kind.rawValue, message: "the answer to \(kind.rawValue) does not decode: \(FlowJSON.describe(error)). Is the coordinator a different version?")
        }
    }

    /// Gives a command whose answer is a ``CommandAnswer`` (cancel, schedules).
    public func command(_ kind: WorkflowCommand.Kind, _ body: some Encodable & Sendable, timeout: Duration = .seconds(15)) async throws -> CommandAnswer {
        let delivery = try await request(kind.rawValue, body: try FlowJSON.encodeBytes(body), timeout: timeout)
        return try FlowJSON.decode(CommandAnswer.self, from: delivery.body)
    }

    /// Asks a running workflow for an update and returns its answer: the handler's result,
    /// or why nothing was applied.
    public func update(_ command: WorkflowCommand.Update, timeout: Duration = .seconds(30)) async throws -> WorkflowUpdateResult {
        let kind = WorkflowCommand.Kind.update.rawValue
        let delivery = try await request(kind, body: try FlowJSON.encodeBytes(command), timeout: timeout)
        if delivery.properties.type == CommandAnswer.messageType {
            throw Refused(request: kind, message: try FlowJSON.decode(CommandAnswer.self, from: delivery.body).message)
        }
        return try FlowJSON.decode(WorkflowUpdateResult.self, from: delivery.body)
    }

    /// Starts a workflow. With `wait`, returns its result once it ends, or parks on a
    /// dead-lettered step (the coordinator then sends a `parked` result); nil without.
    public func start(_ command: WorkflowCommand.Start, wait: Duration?) async throws -> WorkflowResult? {
        let body = try FlowJSON.encodeBytes(command)
        guard let wait else {
            try await publish(WorkflowCommand.Kind.start.rawValue, body: body, correlationID: command.workflowID ?? UUID().uuidString.lowercased(), replyTo: nil)
            return nil
        }
        let delivery = try await request(WorkflowCommand.Kind.start.rawValue, body: body, timeout: wait, correlationID: command.workflowID)
        return try FlowJSON.decode(WorkflowResult.self, from: delivery.body)
    }

    /// Runs an activity on its queue's worker, as any AMQP client may, and returns its final
    /// reply (progress replies are skipped). The message id is new, so it always runs.
    public func call(activity: String, on queue: WorkQueue, input: JSONText, timeout: Duration = .seconds(30)) async throws -> ActivityReply {
        let delivery = try await request(activity, body: Array(input.text.utf8), timeout: timeout, exchange: names.activitiesExchange, routingKey: names.queue(queue))
        do {
            return try FlowJSON.decode(ActivityReply.self, from: delivery.body)
        } catch let error as DecodingError {
            throw Refused(request: activity, message: "the reply of \(activity) does not decode: \(FlowJSON.describe(error))")
        }
    }

    private func request(
        _ type: String, body: [UInt8], timeout: Duration, correlationID: String? = nil, exchange: String = "", routingKey: String? = nil
    ) async throws -> AMQPDelivery {
        let id = correlationID ?? UUID().uuidString.lowercased()
        pending.insert(id)
        defer {
            pending.remove(id)
            early[id] = nil
        }
        try await publish(type, body: body, correlationID: id, replyTo: replyQueue, exchange: exchange, routingKey: routingKey)
        return try await withThrowingTaskGroup(of: AMQPDelivery?.self) { group in
            group.addTask { try await self.answer(to: id) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let delivery = try await group.next() ?? nil else {
                throw NoAnswer(request: type, timeout: timeout)
            }
            return delivery
        }
    }

    private func publish(_ type: String, body: [UInt8], correlationID: String, replyTo: String?, exchange: String = "", routingKey: String? = nil) async throws {
        var headers: FieldTable = [
            FlowProtocol.Header.protocolVersion: .int(FlowProtocol.version),
            FlowProtocol.Header.sentAt: .int(Int64(Date().timeIntervalSince1970 * 1000)),
        ]
        // A caller inside a span: the workflow or activity it starts joins its trace.
        if let trace = ServiceContext.current { MessageTracing.inject(trace, into: &headers) }
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: headers,
            deliveryMode: 2, correlationID: correlationID, replyTo: replyTo, messageID: correlationID,
            timestamp: UInt64(Date().timeIntervalSince1970), type: type
        )
        try await transport.publish(
            AMQPMessage(exchange: exchange, routingKey: routingKey ?? names.name(Topology.workflowCommandQueue), properties: properties, body: body)
        )
    }

    private func answer(to id: String) async throws -> AMQPDelivery {
        if let delivery = early.removeValue(forKey: id) { return delivery }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiting[id] = continuation
                }
            }
        } onCancel: {
            Task { await self.abandon(id) }
        }
    }

    private func abandon(_ id: String) {
        waiting.removeValue(forKey: id)?.resume(throwing: CancellationError())
    }

    private func route(_ delivery: AMQPDelivery) {
        // A running activity's heartbeats: its final reply comes after them.
        guard delivery.properties.type != FlowProtocol.ReplyType.progress else { return }
        let id = delivery.properties.correlationID ?? ""
        if let continuation = waiting.removeValue(forKey: id) {
            continuation.resume(returning: delivery)
        } else if pending.contains(id) {
            early[id] = delivery
        } else {
            logger.debug("an answer came for no waiting request (it timed out)", metadata: ["correlation.id": "\(id)"])
        }
    }
}
