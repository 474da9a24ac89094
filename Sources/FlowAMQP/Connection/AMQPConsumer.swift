/// The deliveries of one queue, as an async sequence. It ends when the consumer is
/// cancelled or its connection closes, and throws when the broker cancels it (the queue
/// was deleted) or the connection is lost for good.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery

    private let stream: AsyncThrowingStream<AMQPDelivery, any Error>
    private let cancelAction: @Sendable () -> Void

    init(stream: AsyncThrowingStream<AMQPDelivery, any Error>, cancel: @escaping @Sendable () -> Void) {
        self.stream = stream
        self.cancelAction = cancel
    }

    /// Stops the consumer. Deliveries not yet acknowledged go back to the queue.
    public func cancel() {
        cancelAction()
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<AMQPDelivery, any Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }
}
