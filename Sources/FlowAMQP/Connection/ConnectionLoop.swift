import CRabbitMQ
import FlowCore
import Foundation
import Glibc
import Logging

/// The one thread that owns a rabbitmq-c connection.
///
/// Tasks hand it commands through a locked inbox and an eventfd that wakes its `poll`;
/// it answers through continuations. Everything below "Owned by the loop thread" is
/// touched by that thread alone, which is what makes the `@unchecked Sendable` sound.
final class ConnectionLoop: @unchecked Sendable {
    enum Command {
        case publish(PendingPublish)
        case settle(AMQPDelivery.Settlement, deliveryTag: UInt64, channel: UInt16, epoch: UInt64, CheckedContinuation<Void, any Error>)
        case declare(Topology, remember: Bool, CheckedContinuation<Void, any Error>)
        case inspectQueue(String, CheckedContinuation<QueueStatus, any Error>)
        case deleteQueue(String, CheckedContinuation<Int, any Error>)
        case deleteExchange(String, CheckedContinuation<Void, any Error>)
        case consume(ConsumerRecord, CheckedContinuation<Void, any Error>)
        /// `explicit` is false when the consumer's sequence merely ended; a stopped consumer
        /// then keeps its channel until it is cancelled explicitly.
        case cancelConsumer(ConsumerRecord, explicit: Bool)
        case stopConsumer(ConsumerRecord, CheckedContinuation<Void, Never>)
        case close(CheckedContinuation<Void, Never>)
    }

    /// A message waiting for its confirm, with the caller's continuation.
    final class PendingPublish {
        let message: AMQPMessage
        let retryOnReconnect: Bool
        let continuation: CheckedContinuation<Void, any Error>
        var returnedError: AMQPError?

        init(message: AMQPMessage, retryOnReconnect: Bool, continuation: CheckedContinuation<Void, any Error>) {
            self.message = message
            self.retryOnReconnect = retryOnReconnect
            self.continuation = continuation
        }
    }

    /// A consumer as the loop tracks it across reconnections.
    final class ConsumerRecord: @unchecked Sendable {
        let queue: String
        let prefetch: UInt16
        let continuation: AsyncThrowingStream<AMQPDelivery, any Error>.Continuation
        // Owned by the loop thread.
        var channel: UInt16?
        var consumerTag: String?
        var cancelled = false
        /// Stopped consumers get no new deliveries but keep their channel, so what they
        /// hold can still be acknowledged.
        var stopped = false

        init(queue: String, prefetch: UInt16, continuation: AsyncThrowingStream<AMQPDelivery, any Error>.Continuation) {
            self.queue = queue
            self.prefetch = prefetch
            self.continuation = continuation
        }
    }

    /// A message whose method frame arrived and whose header and body frames are arriving.
    private struct IncomingContent {
        enum Origin {
            case delivery(consumerTag: String, deliveryTag: UInt64, redelivered: Bool)
            case returned(replyCode: UInt16, replyText: String)
        }

        var origin: Origin
        var exchange: String
        var routingKey: String
        var properties = AMQPProperties()
        var expectedSize = 0
        var body: [UInt8] = []
    }

    private static let publishChannel: UInt16 = 1
    private static let controlChannel: UInt16 = 2
    private static let firstConsumerChannel: UInt16 = 3

    let configuration: AMQPConfiguration
    let logger: Logger
    private let wakeDescriptor: Int32

    // Shared between tasks and the loop thread, guarded by `lock`.
    private let lock = NSLock()
    private var inbox: [Command] = []
    private var acceptsCommands = true
    private var recoveries = 0
    private var connected = false
    /// Whether the loop thread is in (or about to enter) `poll`, so a new command must wake
    /// it. Skipping the eventfd write when it is awake saves a syscall per command.
    private var loopIsSleeping = false

    // Owned by the loop thread.
    private var session: RabbitMQSession?
    private var declaredTopologies: [Topology] = []
    private var consumers: [ConsumerRecord] = []
    private var channelEpochs: [UInt16: UInt64] = [:]
    private var nextEpoch: UInt64 = 1
    private var nextPublishSequence: UInt64 = 1
    /// Publishes written and not yet confirmed, in sequence order.
    private var unconfirmed: [(sequence: UInt64, publish: PendingPublish)] = []
    /// Publishes and other commands waiting for a connection.
    private var waitingForConnection: [Command] = []
    private var incoming: [UInt16: IncomingContent] = [:]
    private var reconnectAt: ContinuousClock.Instant?
    private var reconnectDelay: Duration
    private var closeRequests: [CheckedContinuation<Void, Never>] = []
    private var socketReadable = true
    private var nextHeartbeatCheck = ContinuousClock.now
    private var finished = false

    init(configuration: AMQPConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.reconnectDelay = configuration.recovery.initialDelay
        let descriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard descriptor >= 0 else {
            throw AMQPError(.protocolFailure, "could not create an eventfd for the connection thread (errno \(errno))")
        }
        wakeDescriptor = descriptor
    }

    deinit {
        Glibc.close(wakeDescriptor)
    }

    /// Whether a broker connection is open now (false while reconnecting and after close).
    var isConnected: Bool {
        lock.withLock { connected }
    }

    /// How many times the connection was re-established after a drop.
    var recoveryCount: Int {
        lock.withLock { recoveries }
    }

    // MARK: From any task

    /// Opens the first connection on a new thread and returns once it is up, or throws why
    /// it could not be opened. Later drops are recovered by the thread itself.
    func start() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread { [self] in
                do {
                    try connect()
                } catch {
                    finished = true
                    lock.withLock { acceptsCommands = false }
                    continuation.resume(throwing: (error as? SessionError)?.error ?? error)
                    return
                }
                continuation.resume()
                run()
            }
            thread.name = "amqp \(configuration.host):\(configuration.port)"
            thread.start()
        }
    }

    func submit(_ command: Command) {
        let (accepted, mustWake) = lock.withLock {
            guard acceptsCommands else { return (false, false) }
            inbox.append(command)
            let sleeping = loopIsSleeping
            loopIsSleeping = false
            return (true, sleeping)
        }
        if mustWake {
            var one: UInt64 = 1
            _ = write(wakeDescriptor, &one, MemoryLayout<UInt64>.size)
        }
        if !accepted {
            fail(command, with: AMQPError(.closed, "the connection to \(configuration.redactedURL) is closed"))
        }
    }

    func settle(_ kind: AMQPDelivery.Settlement, deliveryTag: UInt64, channel: UInt16, generation: UInt64) async throws {
        try await withCheckedThrowingContinuation { continuation in
            submit(.settle(kind, deliveryTag: deliveryTag, channel: channel, epoch: generation, continuation))
        }
    }

    // MARK: The loop thread

    private func run() {
        while !finished {
            let commands = lock.withLock {
                let taken = inbox
                inbox.removeAll(keepingCapacity: true)
                return taken
            }
            for command in commands { handle(command) }
            if finished { break }

            if session == nil {
                if goToSleep() { waitForWake(timeout: timeUntilReconnect()) }
                if let reconnectAt, ContinuousClock.now >= reconnectAt { attemptReconnect() }
                continue
            }

            // Reading costs two syscalls even when nothing came, so read only when poll saw
            // data, rabbitmq-c holds some, or the heartbeat timers need a look.
            if socketReadable || session!.hasBufferedInput || ContinuousClock.now >= nextHeartbeatCheck {
                socketReadable = false
                nextHeartbeatCheck = ContinuousClock.now + pollInterval
                readAvailableFrames()
            }
            if finishCloseIfReady() { break }

            guard let session else { continue }
            if !session.hasBufferedInput, goToSleep() {
                socketReadable = waitForWake(timeout: pollInterval, socket: session.socketDescriptor)
            }
        }
        finishEverything(with: AMQPError(.closed, "the connection to \(configuration.redactedURL) was closed"))
    }

    /// Marks the loop as sleeping unless a command is already waiting; returns whether it may sleep.
    private func goToSleep() -> Bool {
        lock.withLock {
            guard inbox.isEmpty else { return false }
            loopIsSleeping = true
            return true
        }
    }

    private var pollInterval: Duration {
        configuration.heartbeatSeconds > 0 ? .milliseconds(configuration.heartbeatSeconds * 250) : .seconds(1)
    }

    private func timeUntilReconnect() -> Duration {
        guard let reconnectAt else { return .seconds(1) }
        return max(.zero, reconnectAt - ContinuousClock.now)
    }

    /// Sleeps in `poll` until a command arrives, the socket has data or `timeout` passes;
    /// returns whether the socket has data.
    @discardableResult
    private func waitForWake(timeout: Duration, socket: Int32? = nil) -> Bool {
        var descriptors = [pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)]
        if let socket { descriptors.append(pollfd(fd: socket, events: Int16(POLLIN), revents: 0)) }
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        _ = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
        lock.withLock { loopIsSleeping = false }
        if descriptors[0].revents & Int16(POLLIN) != 0 {
            var count: UInt64 = 0
            _ = read(wakeDescriptor, &count, MemoryLayout<UInt64>.size)
        }
        return descriptors.count > 1 && descriptors[1].revents != 0
    }

    // MARK: Connecting and recovering

    private func connect() throws {
        let session = try RabbitMQSession(configuration: configuration)
        do {
            try session.openChannel(Self.publishChannel)
            try session.enableConfirms(on: Self.publishChannel)
            try session.openChannel(Self.controlChannel)
            channelEpochs = [:]
            nextPublishSequence = 1
            for topology in declaredTopologies {
                try declare(topology, with: session)
            }
            var channel = Self.firstConsumerChannel
            for consumer in consumers where !consumer.cancelled && !consumer.stopped {
                try startConsumer(consumer, channel: channel, with: session)
                channel += 1
            }
        } catch {
            session.destroy()
            throw error
        }
        self.session = session
        lock.withLock { connected = true }
        reconnectAt = nil
        reconnectDelay = configuration.recovery.initialDelay
        logger.info(
            "connected to the broker",
            metadata: ["amqp.url": "\(configuration.redactedURL)", "amqp.heartbeat": "\(session.negotiatedHeartbeat)"]
        )
        let waiting = waitingForConnection
        waitingForConnection.removeAll()
        for command in waiting { handle(command) }
    }

    private func attemptReconnect() {
        do {
            try connect()
            lock.withLock { recoveries += 1 }
        } catch {
            let reason = (error as? SessionError)?.error.message ?? "\(error)"
            logger.warning(
                "reconnecting to the broker failed; trying again",
                metadata: ["amqp.url": "\(configuration.redactedURL)", "error": "\(reason)", "retry.delay": "\(reconnectDelay)"]
            )
            scheduleReconnect()
        }
    }

    private func scheduleReconnect() {
        reconnectAt = ContinuousClock.now + reconnectDelay
        reconnectDelay = min(reconnectDelay * 2, configuration.recovery.maximumDelay)
    }

    /// Gives up the broken connection and arranges what it held: unconfirmed publishes are
    /// sent again after reconnecting (or reported), consumers resume on the next connection.
    private func connectionLost(_ error: AMQPError) {
        session?.destroy()
        session = nil
        lock.withLock { connected = false }
        incoming.removeAll()
        channelEpochs.removeAll()
        for consumer in consumers {
            consumer.channel = nil
            consumer.consumerTag = nil
        }
        let orphans = unconfirmed
        unconfirmed.removeAll()
        var retried: [Command] = []
        for (_, publish) in orphans {
            if publish.retryOnReconnect, configuration.recovery.enabled {
                retried.append(.publish(publish))
            } else {
                publish.continuation.resume(throwing: AMQPError(.connectionLost, "the connection dropped before the broker confirmed the message (\(error.message)); it may or may not have been delivered"))
            }
        }
        waitingForConnection.insert(contentsOf: retried, at: 0)

        let closing = !closeRequests.isEmpty
        guard configuration.recovery.enabled, !closing else {
            logger.error("the connection to the broker dropped", metadata: ["error": "\(error.message)"])
            finished = true
            finishEverything(with: error)
            return
        }
        logger.warning(
            "the connection to the broker dropped; reconnecting",
            metadata: ["amqp.url": "\(configuration.redactedURL)", "error": "\(error.message)", "unconfirmed": "\(orphans.count)"]
        )
        scheduleReconnect()
    }

    /// Ends every waiting caller and consumer, once, when the loop stops for good.
    private func finishEverything(with error: AMQPError) {
        let remaining = lock.withLock {
            acceptsCommands = false
            let taken = inbox
            inbox.removeAll()
            return taken
        }
        for command in waitingForConnection + remaining {
            if case .publish(let publish) = command, error.code != .closed {
                publish.continuation.resume(throwing: AMQPError(.connectionLost, "the connection dropped before the message was sent (\(error.message)); it was not delivered"))
            } else {
                fail(command, with: error)
            }
        }
        waitingForConnection.removeAll()
        for (_, publish) in unconfirmed {
            publish.continuation.resume(throwing: AMQPError(.connectionLost, "the connection closed before the broker confirmed the message: \(error.message)"))
        }
        unconfirmed.removeAll()
        for consumer in consumers {
            if error.code == .closed { consumer.continuation.finish() } else { consumer.continuation.finish(throwing: error) }
        }
        consumers.removeAll()
        session?.close()
        session = nil
        lock.withLock { connected = false }
        for request in closeRequests { request.resume() }
        closeRequests.removeAll()
    }

    private func fail(_ command: Command, with error: AMQPError) {
        switch command {
        case .publish(let publish): publish.continuation.resume(throwing: error)
        case .settle(_, _, _, _, let continuation): continuation.resume(throwing: error)
        case .declare(_, _, let continuation): continuation.resume(throwing: error)
        case .inspectQueue(_, let continuation): continuation.resume(throwing: error)
        case .deleteQueue(_, let continuation): continuation.resume(throwing: error)
        case .deleteExchange(_, let continuation): continuation.resume(throwing: error)
        case .consume(let consumer, let continuation):
            consumer.continuation.finish(throwing: error)
            continuation.resume(throwing: error)
        case .cancelConsumer(let consumer, _): consumer.continuation.finish()
        case .stopConsumer(let consumer, let continuation):
            consumer.continuation.finish()
            continuation.resume()
        case .close(let continuation): continuation.resume()
        }
    }

    // MARK: Commands

    private func handle(_ command: Command) {
        if case .close(let continuation) = command {
            closeRequests.append(continuation)
            lock.withLock { acceptsCommands = false }
            if session == nil { finished = true }
            return
        }
        if case .settle(_, _, _, _, let continuation) = command, session == nil {
            continuation.resume(throwing: AMQPError(.staleDelivery, "the delivery's connection dropped, so it cannot be acknowledged; the broker will deliver the message again"))
            return
        }
        if case .cancelConsumer(let consumer, let explicit) = command {
            if explicit || !consumer.stopped { cancel(consumer) }
            return
        }
        if case .stopConsumer(let consumer, let continuation) = command {
            stop(consumer)
            continuation.resume()
            return
        }
        guard let session else {
            waitingForConnection.append(command)
            return
        }
        do {
            try perform(command, with: session)
        } catch let failure as SessionError {
            switch failure {
            case .channel(let channel, let error):
                fail(command, with: error)
                recoverChannel(channel, after: error)
            case .connection(let error):
                if case .publish(let publish) = command {
                    // Part of it may have reached the broker before the connection died, as
                    // for a publish awaiting its confirm: sent again only when allowed.
                    if publish.retryOnReconnect, configuration.recovery.enabled {
                        waitingForConnection.append(command)
                    } else {
                        publish.continuation.resume(throwing: AMQPError(.connectionLost, "the connection dropped while the message was being sent (\(error.message)); it may or may not have been delivered"))
                    }
                } else if case .settle(_, let deliveryTag, _, _, let continuation) = command {
                    // The delivery dies with its connection: the broker delivers it again,
                    // exactly as when the connection had dropped before the settle.
                    continuation.resume(throwing: AMQPError(.staleDelivery, "the connection dropped while delivery \(deliveryTag) was being acknowledged (\(error.message)); the broker will deliver the message again"))
                } else {
                    fail(command, with: error)
                }
                connectionLost(error)
            }
        } catch {
            fail(command, with: AMQPError(.protocolFailure, "\(error)"))
        }
    }

    private func perform(_ command: Command, with session: RabbitMQSession) throws {
        switch command {
        case .publish(let publish):
            try session.publish(publish.message, on: Self.publishChannel)
            unconfirmed.append((nextPublishSequence, publish))
            nextPublishSequence += 1
        case .settle(let kind, let deliveryTag, let channel, let epoch, let continuation):
            guard channelEpochs[channel] == epoch else {
                continuation.resume(throwing: AMQPError(.staleDelivery, "delivery \(deliveryTag) arrived on a channel that has since closed, so it cannot be acknowledged; the broker will deliver the message again"))
                return
            }
            try session.settle(kind, deliveryTag: deliveryTag, on: channel)
            continuation.resume()
        case .declare(let topology, let remember, let continuation):
            try declare(topology, with: session)
            if remember, !declaredTopologies.contains(topology) { declaredTopologies.append(topology) }
            continuation.resume()
        case .inspectQueue(let name, let continuation):
            continuation.resume(returning: try session.inspectQueue(name, on: Self.controlChannel))
        case .deleteQueue(let name, let continuation):
            continuation.resume(returning: try session.deleteQueue(name, on: Self.controlChannel))
        case .deleteExchange(let name, let continuation):
            try session.deleteExchange(name, on: Self.controlChannel)
            continuation.resume()
        case .consume(let consumer, let continuation):
            try startConsumer(consumer, channel: freeConsumerChannel(), with: session)
            consumers.append(consumer)
            continuation.resume()
        case .cancelConsumer, .stopConsumer, .close:
            break
        }
    }

    private func declare(_ topology: Topology, with session: RabbitMQSession) throws {
        for exchange in topology.exchanges { try session.declare(exchange, on: Self.controlChannel) }
        for queue in topology.queues { try session.declare(queue, on: Self.controlChannel) }
        for binding in topology.bindings { try session.bind(binding, on: Self.controlChannel) }
    }

    private func freeConsumerChannel() -> UInt16 {
        let used = Set(consumers.compactMap(\.channel))
        var channel = Self.firstConsumerChannel
        while used.contains(channel) { channel += 1 }
        return channel
    }

    private func startConsumer(_ consumer: ConsumerRecord, channel: UInt16, with session: RabbitMQSession) throws {
        try session.openChannel(channel)
        channelEpochs[channel] = nextEpoch
        nextEpoch += 1
        try session.setPrefetch(consumer.prefetch, on: channel)
        consumer.consumerTag = try session.consume(queue: consumer.queue, on: channel)
        consumer.channel = channel
    }

    private func stop(_ consumer: ConsumerRecord) {
        guard !consumer.stopped, !consumer.cancelled else { return }
        consumer.stopped = true
        if let session, let channel = consumer.channel, let tag = consumer.consumerTag {
            do {
                try session.cancelConsumer(tag: tag, on: channel)
            } catch let failure as SessionError {
                if case .connection(let error) = failure { connectionLost(error) }
            } catch {}
        }
        consumer.continuation.finish()
    }

    private func cancel(_ consumer: ConsumerRecord) {
        guard !consumer.cancelled else { return }
        consumer.cancelled = true
        consumers.removeAll { $0 === consumer }
        if let session, let channel = consumer.channel {
            // Closing the channel both cancels the consumer and returns its unacknowledged
            // messages to the queue.
            session.closeChannel(channel)
            channelEpochs[channel] = nil
        }
        consumer.channel = nil
        consumer.continuation.finish()
    }

    /// Re-opens a channel the broker closed, so one failed operation does not stop the others.
    private func recoverChannel(_ channel: UInt16, after error: AMQPError) {
        guard let session else { return }
        incoming[channel] = nil
        channelEpochs[channel] = nil
        do {
            switch channel {
            case Self.publishChannel:
                try session.openChannel(channel)
                try session.enableConfirms(on: channel)
                nextPublishSequence = 1
                let orphans = unconfirmed
                unconfirmed.removeAll()
                for (_, publish) in orphans {
                    // The error names the exchange that closed the channel; other publishes
                    // were innocent bystanders and go out again.
                    if error.message.contains("'\(publish.message.exchange)'") {
                        publish.continuation.resume(throwing: error)
                    } else {
                        handle(.publish(publish))
                    }
                }
            case Self.controlChannel:
                try session.openChannel(channel)
            default:
                guard let consumer = consumers.first(where: { $0.channel == channel }) else { return }
                consumer.channel = nil
                do {
                    try startConsumer(consumer, channel: channel, with: session)
                    logger.warning("the broker closed a consumer's channel; consuming again", metadata: ["amqp.queue": "\(consumer.queue)", "error": "\(error.message)"])
                } catch let failure as SessionError {
                    if case .channel = failure {
                        consumers.removeAll { $0 === consumer }
                        consumer.continuation.finish(throwing: failure.error)
                    } else {
                        throw failure
                    }
                }
            }
        } catch let failure as SessionError {
            connectionLost(failure.error)
        } catch {
            connectionLost(AMQPError(.protocolFailure, "\(error)"))
        }
    }

    private func finishCloseIfReady() -> Bool {
        guard !closeRequests.isEmpty, unconfirmed.isEmpty, waitingForConnection.isEmpty else { return false }
        finished = true
        return true
    }

    // MARK: Frames

    private func readAvailableFrames() {
        guard let session else { return }
        do {
            var handled = 0
            while handled < 512, let frame = try session.nextFrame() {
                handled += 1
                try handle(frame, with: session)
                if self.session == nil { return }
            }
            session.releaseBuffers()
        } catch let failure as SessionError {
            connectionLost(failure.error)
        } catch {
            connectionLost(AMQPError(.protocolFailure, "\(error)"))
        }
    }

    private func handle(_ frame: amqp_frame_t, with session: RabbitMQSession) throws {
        let channel = frame.channel
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            try handleMethod(frame.payload.method, channel: channel, with: session)
        case AMQP_FRAME_HEADER:
            guard var content = incoming[channel] else { return }
            if let decoded = frame.payload.properties.decoded {
                content.properties = CDecoding.properties(decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
            }
            content.expectedSize = Int(frame.payload.properties.body_size)
            content.body.reserveCapacity(content.expectedSize)
            incoming[channel] = content
            if content.expectedSize == 0 { complete(channel: channel) }
        case AMQP_FRAME_BODY:
            guard incoming[channel] != nil else { return }
            incoming[channel]!.body.append(contentsOf: CDecoding.bytes(frame.payload.body_fragment))
            if incoming[channel]!.body.count >= incoming[channel]!.expectedSize { complete(channel: channel) }
        default:
            return
        }
    }

    private func handleMethod(_ method: amqp_method_t, channel: UInt16, with session: RabbitMQSession) throws {
        switch method.id {
        case CRabbitMQ_BASIC_ACK_METHOD:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nacked: false)
        case CRabbitMQ_BASIC_NACK_METHOD:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, nacked: true)
        case CRabbitMQ_BASIC_DELIVER_METHOD:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            incoming[channel] = IncomingContent(
                origin: .delivery(consumerTag: CDecoding.string(deliver.consumer_tag), deliveryTag: deliver.delivery_tag, redelivered: deliver.redelivered != 0),
                exchange: CDecoding.string(deliver.exchange),
                routingKey: CDecoding.string(deliver.routing_key)
            )
        case CRabbitMQ_BASIC_RETURN_METHOD:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            incoming[channel] = IncomingContent(
                origin: .returned(replyCode: returned.reply_code, replyText: CDecoding.string(returned.reply_text)),
                exchange: CDecoding.string(returned.exchange),
                routingKey: CDecoding.string(returned.routing_key)
            )
        case CRabbitMQ_BASIC_CANCEL_METHOD:
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = CDecoding.string(cancel.consumer_tag)
            if let consumer = consumers.first(where: { $0.consumerTag == tag }) {
                consumers.removeAll { $0 === consumer }
                if let channel = consumer.channel {
                    session.closeChannel(channel)
                    channelEpochs[channel] = nil
                }
                consumer.continuation.finish(throwing: AMQPError(.notFound, "the broker cancelled the consumer of queue '\(consumer.queue)', usually because the queue was deleted: declare it again and restart the consumer"))
            }
        case CRabbitMQ_CHANNEL_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            session.acknowledgeChannelClose(channel)
            let error = BrokerErrors.error(code: close.reply_code, text: CDecoding.string(close.reply_text), action: "use channel \(channel)", configuration: configuration)
            recoverChannel(channel, after: error)
        case CRabbitMQ_CONNECTION_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            session.acknowledgeConnectionClose()
            throw SessionError.connection(BrokerErrors.error(code: close.reply_code, text: CDecoding.string(close.reply_text), action: "keep the connection", configuration: configuration))
        case CRabbitMQ_CONNECTION_BLOCKED_METHOD:
            logger.warning("the broker blocked publishing (memory or disk alarm); publishes wait until it unblocks")
        case CRabbitMQ_CONNECTION_UNBLOCKED_METHOD:
            logger.info("the broker unblocked publishing")
        default:
            return
        }
    }

    private func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool) {
        var settled: [PendingPublish] = []
        if multiple {
            let count = unconfirmed.prefix { $0.sequence <= tag }.count
            settled = unconfirmed.prefix(count).map(\.publish)
            unconfirmed.removeFirst(count)
        } else if let index = unconfirmed.firstIndex(where: { $0.sequence == tag }) {
            settled = [unconfirmed.remove(at: index).publish]
        }
        for publish in settled {
            if nacked {
                publish.continuation.resume(throwing: AMQPError(.publishNacked, "the broker refused the message for exchange '\(publish.message.exchange)' with routing key '\(publish.message.routingKey)' (basic.nack): the queue may be full or unavailable; publish it again later"))
            } else if let error = publish.returnedError {
                publish.continuation.resume(throwing: error)
            } else {
                publish.continuation.resume()
            }
        }
    }

    private func complete(channel: UInt16) {
        guard let content = incoming.removeValue(forKey: channel) else { return }
        switch content.origin {
        case .delivery(let consumerTag, let deliveryTag, let redelivered):
            guard let consumer = consumers.first(where: { $0.consumerTag == consumerTag }), let epoch = channelEpochs[channel] else { return }
            let delivery = AMQPDelivery(
                exchange: content.exchange,
                routingKey: content.routingKey,
                properties: content.properties,
                body: content.body,
                redelivered: redelivered,
                deliveryTag: deliveryTag,
                settler: ChannelSettler(loop: self, channel: channel, generation: epoch)
            )
            consumer.continuation.yield(delivery)
        case .returned(let replyCode, let replyText):
            // A return carries no delivery tag; it comes before the confirm of its message,
            // so it belongs to the oldest unconfirmed mandatory publish with the same address
            // and body that is not already marked returned.
            let match = unconfirmed.first { entry in
                let message = entry.publish.message
                return entry.publish.returnedError == nil && message.mandatory && message.exchange == content.exchange
                    && message.routingKey == content.routingKey && message.body == content.body
            }
            let exchangeName = content.exchange.isEmpty ? "the default exchange" : "exchange '\(content.exchange)'"
            match?.publish.returnedError = AMQPError(
                .unroutable,
                "no queue took the message published to \(exchangeName) with routing key '\(content.routingKey)' (\(replyCode) \(replyText)): check the routing key, or declare the topology with `flow topology declare`"
            )
        }
    }
}
