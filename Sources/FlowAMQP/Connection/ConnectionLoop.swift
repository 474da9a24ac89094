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
/// The connection's bookkeeping (confirms, channel epochs, reconnecting) is the value
/// ``ConnectionStateMachine``; commands, recovery and frames are in the files beside this.
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
    struct IncomingContent {
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

    static let publishChannel: UInt16 = 1
    static let controlChannel: UInt16 = 2
    static let firstConsumerChannel: UInt16 = 3

    let configuration: AMQPConfiguration
    /// The configuration's endpoints in this connection's own order, so copies of a
    /// service spread over a cluster's nodes rather than all opening to the first.
    let endpointOrder: [AMQPConfiguration.Endpoint]
    let logger: Logger
    let wakeDescriptor: Int32

    // Shared between tasks and the loop thread, guarded by `lock`.
    let lock = NSLock()
    private var inbox: [Command] = []
    var acceptsCommands = true
    var recoveries = 0
    var connected = false
    var connectedEndpoint: AMQPConfiguration.Endpoint?
    /// Set when a close is submitted, so a connect under way can give up at once.
    var closeRequested = false
    /// Whether the loop thread is in (or about to enter) `poll`, so a new command must wake
    /// it. Skipping the eventfd write when it is awake saves a syscall per command.
    private var loopIsSleeping = false

    // Owned by the loop thread.
    var session: RabbitMQSession?
    /// Which of `endpointOrder` the next attempt opens to (modulo its count).
    var endpointCursor = 0
    var machine: ConnectionStateMachine<PendingPublish>
    var declaredTopologies: [Topology] = []
    var consumers: [ConsumerRecord] = []
    /// Publishes and other commands waiting for a connection.
    var waitingForConnection: [Command] = []
    /// Set by a `basic.nack`: the publish channel is replaced once nothing on it awaits a
    /// confirm, and publishes wait in `waitingForFreshChannel` until then.
    var publishChannelRefuses = false
    var waitingForFreshChannel: [PendingPublish] = []
    var incoming: [UInt16: IncomingContent] = [:]
    var closeRequests: [CheckedContinuation<Void, Never>] = []
    private var socketReadable = true
    private var nextHeartbeatCheck = ContinuousClock.now
    var finished = false

    init(configuration: AMQPConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.endpointOrder = configuration.shufflesEndpoints ? configuration.endpoints.shuffled() : configuration.endpoints
        self.logger = logger
        machine = ConnectionStateMachine(
            reconnectBackoff: Backoff(initial: configuration.recovery.initialDelay, maximum: configuration.recovery.maximumDelay)
        )
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

    /// The node the connection is open to now.
    var endpoint: AMQPConfiguration.Endpoint? {
        lock.withLock { connectedEndpoint }
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
                    try connectToAnyEndpoint()
                } catch {
                    finished = true
                    lock.withLock { acceptsCommands = false }
                    continuation.resume(throwing: error)
                    return
                }
                continuation.resume()
                run()
            }
            thread.name = "amqp"
            thread.start()
        }
    }

    func submit(_ command: Command) {
        let (accepted, mustWake) = lock.withLock {
            guard acceptsCommands else { return (false, false) }
            inbox.append(command)
            let sleeping = loopIsSleeping
            loopIsSleeping = false
            // A close wakes the loop even while it connects, which it does awake.
            if case .close = command {
                closeRequested = true
                return (true, true)
            }
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

    /// Takes the commands submitted so far, leaving the inbox empty.
    func takeInbox() -> [Command] {
        lock.withLock {
            let taken = inbox
            inbox.removeAll(keepingCapacity: true)
            return taken
        }
    }

    // MARK: The loop thread

    private func run() {
        while !finished {
            for command in takeInbox() { handle(command) }
            if finished { break }

            if session == nil {
                if goToSleep() { waitForWake(timeout: machine.untilReconnect(from: .now) ?? .seconds(1)) }
                if machine.reconnectDue(at: .now) { attemptReconnect() }
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

    private func finishCloseIfReady() -> Bool {
        guard !closeRequests.isEmpty, machine.unconfirmed.isEmpty, waitingForConnection.isEmpty, waitingForFreshChannel.isEmpty else { return false }
        finished = true
        return true
    }
}
