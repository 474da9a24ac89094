/// The deliveries of one queue, as an async sequence. It ends when the consumer is
/// cancelled or its connection closes, and throws when the broker cancels it (the queue
/// was deleted) or the connection is lost for good.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery

    private let stream: AsyncThrowingStream<AMQPDelivery, any Error>
    private let cancelAction: @Sendable () -> Void
    private let stopAction: @Sendable () async -> Void

    /// Made by a transport: `cancel` closes the consumer at once, `stop` asks for no more
    /// deliveries and ends the stream while what was delivered can still be settled.
    public init(
        stream: AsyncThrowingStream<AMQPDelivery, any Error>,
        cancel: @escaping @Sendable () -> Void,
        stop: @escaping @Sendable () async -> Void
    ) {
        self.stream = stream
        self.cancelAction = cancel
        self.stopAction = stop
    }

    /// Ends the consumer and closes its channel: deliveries not yet acknowledged go back
    /// to the queue at once.
    public func cancel() {
        cancelAction()
    }

    /// Asks the broker for no more deliveries (`basic.cancel`) and ends the sequence, but
    /// keeps the channel open so deliveries already received can still be acknowledged:
    /// the first step of a graceful shutdown. Call ``cancel()`` afterwards to return what
    /// is left to the queue.
    public func stop() async {
        await stopAction()
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<AMQPDelivery, any Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }
}
