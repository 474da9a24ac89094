import FlowTransport
import FlowCore
import Foundation

/// A delivery read as an activity request, per `docs/protocol.md`.
struct ActivityRequest: Sendable {
    var activity: String
    var messageID: String
    var correlationID: String
    var replyTo: String?
    var attempt: Int
    var workflowID: String?
    var deadline: Date?
    var lastHeartbeat: JSONText?
    /// The caller's start-to-close timeout for each attempt, replacing the activity's own.
    var startToCloseTimeout: Duration?
    /// The caller's retry policy, replacing the activity's own.
    /// The publisher's `flow-retry-policy`, over the activity's own policy.
    var retryPolicy: RetryPolicy.Override?
    /// The publisher's `flow-priority`.
    var priority: ActivityPriority = .normal
    /// The publisher's `flow-rate-key`.
    var rateKey: String?
    var body: [UInt8]

    /// Why a delivery is not a request at all; it goes to the dead-letter queue unrun.
    struct Rejection: Error {
        var kind: ActivityFailure.Kind
        var message: String
        var activity: String
    }

    static func parse(_ delivery: AMQPDelivery) -> Result<ActivityRequest, Rejection> {
        let properties = delivery.properties
        let headers = properties.headers ?? [:]
        let activity = properties.type ?? headers[FlowProtocol.Header.activity]?.stringValue ?? ""

        if let version = headers[FlowProtocol.Header.protocolVersion], version.integerValue != FlowProtocol.version {
            return .failure(Rejection(kind: .unsupportedProtocol, message: "the message says protocol version \(version.stringValue ?? "?"); this worker speaks version \(FlowProtocol.version) (docs/protocol.md)", activity: activity))
        }
        guard !activity.isEmpty else {
            return .failure(Rejection(kind: .missingActivityName, message: "the message names no activity: set the AMQP `type` property (or the `flow-activity` header) to the activity's name", activity: ""))
        }
        guard let messageID = properties.messageID ?? headers[FlowProtocol.Header.messageID]?.stringValue, !messageID.isEmpty else {
            return .failure(Rejection(kind: .missingMessageID, message: "the message has no id: set the AMQP `message_id` property (or the `flow-message-id` header); it is the idempotency key", activity: activity))
        }
        if let contentType = properties.contentType, !contentType.lowercased().hasPrefix("application/json") {
            return .failure(Rejection(kind: .unsupportedContentType, message: "content type '\(contentType)' is not application/json", activity: activity))
        }
        let attemptValue = headers[FlowProtocol.Header.attempt]
        let attempt = attemptValue.map { $0.integerValue ?? -1 } ?? 1
        guard attempt >= 1 else {
            return .failure(Rejection(kind: .invalidHeader, message: "header \(FlowProtocol.Header.attempt) must be a whole number from 1, got \(attemptValue?.stringValue ?? "?")", activity: activity))
        }
        let deadline = headers[FlowProtocol.Header.deadline]?.integerValue.map { Date(timeIntervalSince1970: Double($0) / 1000) }
        let lastHeartbeat = headers[FlowProtocol.Header.lastHeartbeat]?.stringValue.flatMap { try? JSONText(validating: $0) }
        var startToCloseTimeout: Duration?
        if let value = headers[FlowProtocol.Header.startToCloseTimeout] {
            guard let milliseconds = value.integerValue, milliseconds > 0 else {
                return .failure(Rejection(kind: .invalidHeader, message: "header \(FlowProtocol.Header.startToCloseTimeout) must be a positive number of milliseconds, got \(value.stringValue ?? "?")", activity: activity))
            }
            startToCloseTimeout = .milliseconds(milliseconds)
        }
        var retryPolicy: RetryPolicy.Override?
        if let value = headers[FlowProtocol.Header.retryPolicy] {
            do {
                guard let text = value.stringValue else { throw RetryPolicyHeaderError("must be a JSON string") }
                retryPolicy = try RetryPolicy.Override(headerJSON: text)
            } catch {
                return .failure(Rejection(kind: .invalidHeader, message: "\(error)", activity: activity))
            }
        }
        var priority = ActivityPriority.normal
        if let value = headers[FlowProtocol.Header.priority] {
            guard let text = value.stringValue, let parsed = ActivityPriority(headerValue: text) else {
                return .failure(Rejection(kind: .invalidHeader, message: "header \(FlowProtocol.Header.priority) must be high, normal or low, got \(value.stringValue ?? "?")", activity: activity))
            }
            priority = parsed
        }
        let rateKey = headers[FlowProtocol.Header.rateKey]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        return .success(
            ActivityRequest(
                activity: activity,
                messageID: messageID,
                correlationID: properties.correlationID ?? messageID,
                replyTo: properties.replyTo.flatMap { $0.isEmpty ? nil : $0 },
                attempt: Int(attempt),
                workflowID: headers[FlowProtocol.Header.workflowID]?.stringValue,
                deadline: deadline,
                lastHeartbeat: lastHeartbeat,
                startToCloseTimeout: startToCloseTimeout,
                retryPolicy: retryPolicy,
                priority: priority,
                rateKey: rateKey,
                body: delivery.body
            )
        )
    }
}
