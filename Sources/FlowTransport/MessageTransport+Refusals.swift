import FlowCore

extension Backoff {
    /// The waits between publishes of a message the broker refused: 0.1 s doubling to 5 s.
    public static let refusedPublish = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
}

extension MessageTransport {
    /// Publishes `message`, and when the broker refuses it (`basic.nack`) publishes it again
    /// after a growing wait, until the broker takes it or the task is cancelled.
    ///
    /// For a publish that a delivery waits on (its reply, its retry or dead-letter copy).
    /// A quorum queue refuses publishes while it elects a new leader, and one that is full
    /// refuses them until it drains. Returning the delivery to its queue at each refusal
    /// instead would have it redelivered at once and refused again, and each round counts
    /// against the queue's delivery limit: a few refusals in a second dead-lettered
    /// activities that had completed. Holding the delivery while waiting keeps it counted
    /// once, and holds its consumer slot, which slows the consumer while the broker cannot
    /// take what it sends. `onRefusal` hears each refusal, its count and the wait after it.
    public func publishUntilTaken(
        _ message: AMQPMessage,
        backoff: Backoff,
        onRefusal: (_ refusals: Int, _ wait: Duration, _ error: AMQPError) -> Void = { _, _, _ in }
    ) async throws {
        var refusals = 0
        while true {
            do {
                try await publish(message)
                return
            } catch let error as AMQPError where error.code == .publishNacked {
                refusals += 1
                let wait = backoff.delay(afterFailures: refusals, random: Double.random(in: 0..<1))
                onRefusal(refusals, wait, error)
                try await Task.sleep(for: wait)
            }
        }
    }
}
