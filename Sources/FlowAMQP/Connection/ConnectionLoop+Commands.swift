import FlowCore
import Foundation

extension ConnectionLoop {
    func fail(_ command: Command, with error: AMQPError) {
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

    func handle(_ command: Command) {
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
        if case .publish(let publish) = command, publishChannelRefuses {
            waitingForFreshChannel.append(publish)
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

    func perform(_ command: Command, with session: RabbitMQSession) throws {
        switch command {
        case .publish(let publish):
            try session.publish(publish.message, on: Self.publishChannel)
            machine.published(publish)
        case .settle(let kind, let deliveryTag, let channel, let epoch, let continuation):
            guard machine.epoch(of: channel) == epoch else {
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

    func declare(_ topology: Topology, with session: RabbitMQSession) throws {
        for exchange in topology.exchanges { try session.declare(exchange, on: Self.controlChannel) }
        for queue in topology.queues { try declare(queue, with: session) }
        for binding in topology.bindings { try session.bind(binding, on: Self.controlChannel) }
    }

    /// Declares a queue, accepting one that exists with another initial replica count.
    /// The broker reads `x-quorum-initial-group-size` only when it creates a queue, yet
    /// compares it on every declaration; a queue made before the argument was declared
    /// (or with another count) is the same queue, with the membership it has, and refusing
    /// it would stop every worker of an upgraded deployment. The queue is declared again
    /// with the count it has, so any other difference is still refused.
    private func declare(_ queue: Topology.Queue, with session: RabbitMQSession) throws {
        do {
            try session.declare(queue, on: Self.controlChannel)
        } catch SessionError.channel(let channel, let error) where error.code == .preconditionFailed {
            guard let existing = BrokerErrors.existingIntegerArgument(Self.initialGroupSizeArgument, in: error.message) else {
                throw SessionError.channel(channel, error)
            }
            var asItIs = queue
            asItIs.arguments[Self.initialGroupSizeArgument] = existing.map(FieldValue.int)
            try session.openChannel(channel)
            try session.declare(asItIs, on: channel)
            logger.notice(
                "the queue exists with another initial replica count; using it as it is",
                metadata: ["amqp.queue": "\(queue.name)", "amqp.initial_group_size": "\(existing.map(String.init) ?? "none")"]
            )
        }
    }

    static let initialGroupSizeArgument = "x-quorum-initial-group-size"

    func freeConsumerChannel() -> UInt16 {
        let used = Set(consumers.compactMap(\.channel))
        var channel = Self.firstConsumerChannel
        while used.contains(channel) { channel += 1 }
        return channel
    }

    func startConsumer(_ consumer: ConsumerRecord, channel: UInt16, with session: RabbitMQSession) throws {
        try session.openChannel(channel)
        _ = machine.channelOpened(channel)
        try session.setPrefetch(consumer.prefetch, on: channel)
        consumer.consumerTag = try session.consume(queue: consumer.queue, on: channel)
        consumer.channel = channel
    }

    func stop(_ consumer: ConsumerRecord) {
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

    func cancel(_ consumer: ConsumerRecord) {
        guard !consumer.cancelled else { return }
        consumer.cancelled = true
        consumers.removeAll { $0 === consumer }
        if let session, let channel = consumer.channel {
            // Closing the channel both cancels the consumer and returns its unacknowledged
            // messages to the queue.
            session.closeChannel(channel)
            machine.channelClosed(channel)
        }
        consumer.channel = nil
        consumer.continuation.finish()
    }
}
