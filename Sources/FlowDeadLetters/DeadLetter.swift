import FlowTransport
import FlowCore
import Foundation

/// One message in the dead-letter queue, read from the broker's `x-death` history and our
/// own `flow-*` failure headers.
public struct DeadLetter: Sendable {
    /// The message as it sits in the dead-letter queue.
    public let delivery: AMQPDelivery
    /// The queue the message died in (where a replay sends it back).
    public let originalQueue: String?
    /// `rejected`, `expired`, `delivery_limit`, `maxlen`, or for messages a worker
    /// dead-lettered, `failed`; `unknown` when the message says nothing.
    public let reason: String
    public let activity: String?
    public let messageID: String?
    public let workflowID: String?
    public let errorType: String?
    public let errorMessage: String?
    public let attempts: Int?
    public let replayCount: Int
    /// When it was dead-lettered, as far as the headers say.
    public let deadLetteredAt: Date?

    /// An id for `flow dlq show` and filters: the message id, or a digest of the body for
    /// messages published without one.
    public var displayID: String {
        messageID ?? "body-" + String(delivery.body.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }, radix: 16)
    }

    public init(_ delivery: AMQPDelivery) {
        self.delivery = delivery
        let properties = delivery.properties
        let headers = properties.headers ?? [:]
        let firstDeath = Self.firstDeath(in: headers)

        if let queue = headers[FlowProtocol.Header.deadLetteredFrom]?.stringValue {
            originalQueue = queue
            reason = "failed"
        } else {
            originalQueue = headers["x-first-death-queue"]?.stringValue ?? firstDeath?["queue"]?.stringValue
            reason = headers["x-first-death-reason"]?.stringValue ?? firstDeath?["reason"]?.stringValue ?? "unknown"
        }
        activity = properties.type ?? headers[FlowProtocol.Header.activity]?.stringValue
        messageID = properties.messageID ?? headers[FlowProtocol.Header.messageID]?.stringValue
        workflowID = headers[FlowProtocol.Header.workflowID]?.stringValue
        errorType = headers[FlowProtocol.Header.errorType]?.stringValue
        errorMessage = headers[FlowProtocol.Header.failureReason]?.stringValue
        attempts = headers[FlowProtocol.Header.attempt]?.integerValue.map(Int.init) ?? (firstDeath?["count"]?.integerValue).map(Int.init)
        replayCount = headers[FlowProtocol.Header.replayCount]?.integerValue.map(Int.init) ?? 0
        if let milliseconds = headers[FlowProtocol.Header.deadLetteredAt]?.integerValue {
            deadLetteredAt = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        } else if case .timestamp(let seconds)? = firstDeath?["time"] {
            deadLetteredAt = Date(timeIntervalSince1970: Double(seconds))
        } else {
            deadLetteredAt = properties.timestamp.map { Date(timeIntervalSince1970: Double($0)) }
        }
    }

    /// The oldest entry of the broker's `x-death` list (the list is newest first).
    static func firstDeath(in headers: FieldTable) -> FieldTable? {
        guard case .array(let deaths)? = headers["x-death"], case .table(let last)? = deaths.last else { return nil }
        return last
    }

    /// Every entry of `x-death`, oldest first, as `reason in queue (count times)`.
    public var deathHistory: [String] {
        guard case .array(let deaths)? = delivery.properties.headers?["x-death"] else { return [] }
        return deaths.reversed().compactMap { entry in
            guard case .table(let death) = entry else { return nil }
            let count = death["count"]?.integerValue ?? 1
            return "\(death["reason"]?.stringValue ?? "?") in \(death["queue"]?.stringValue ?? "?") (\(count) time\(count == 1 ? "" : "s"))"
        }
    }
}
