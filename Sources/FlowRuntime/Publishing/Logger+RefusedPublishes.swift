import FlowTransport
import Logging

extension Logger {
    /// An `onRefusal` for ``MessageTransport/publishUntilTaken(_:backoff:onRefusal:)`` that
    /// warns at the first refusal and every tenth after it, not at each.
    public func refusedPublishes(of what: String, messageID: String) -> @Sendable (_ refusals: Int, _ wait: Duration, _ error: AMQPError) -> Void {
        let logger = self
        return { refusals, wait, error in
            guard refusals == 1 || refusals % 10 == 0 else { return }
            logger.warning(
                "the broker refused a \(what); publishing it again while its request waits unacknowledged",
                metadata: ["message.id": "\(messageID)", "refusals": "\(refusals)", "retry.delay": "\(wait)", "error": "\(error.message)"]
            )
        }
    }
}
