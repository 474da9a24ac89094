import FlowCore
import Foundation

extension ConnectionLoop {
    func readAvailableFrames() {
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

    private func handle(_ frame: Frame, with session: RabbitMQSession) throws {
        switch frame {
        case .confirm(let deliveryTag, let multiple, let nacked):
            confirm(upTo: deliveryTag, multiple: multiple, nacked: nacked)
        case .deliver(let channel, let consumerTag, let deliveryTag, let redelivered, let exchange, let routingKey):
            incoming[channel] = IncomingContent(
                origin: .delivery(consumerTag: consumerTag, deliveryTag: deliveryTag, redelivered: redelivered), exchange: exchange, routingKey: routingKey
            )
        case .returned(let channel, let replyCode, let replyText, let exchange, let routingKey):
            incoming[channel] = IncomingContent(origin: .returned(replyCode: replyCode, replyText: replyText), exchange: exchange, routingKey: routingKey)
        case .contentHeader(let channel, let properties, let bodySize):
            guard var content = incoming[channel] else { return }
            content.properties = properties
            content.expectedSize = bodySize
            content.body.reserveCapacity(bodySize)
            incoming[channel] = content
            if bodySize == 0 { complete(channel: channel) }
        case .contentBody(let channel, let bytes):
            guard incoming[channel] != nil else { return }
            incoming[channel]!.body.append(contentsOf: bytes)
            if incoming[channel]!.body.count >= incoming[channel]!.expectedSize { complete(channel: channel) }
        case .consumerCancelled(let tag):
            guard let consumer = consumers.first(where: { $0.consumerTag == tag }) else { return }
            try resubscribe(consumer, with: session)
        case .channelClosed(let channel, let error):
            recoverChannel(channel, after: error)
        case .connectionClosed(let error):
            throw SessionError.connection(error)
        case .blocked:
            logger.warning("the broker blocked publishing (memory or disk alarm); publishes wait until it unblocks")
        case .unblocked:
            logger.info("the broker unblocked publishing")
        case .ignored:
            return
        }
    }

    /// The broker cancelled a consumer (`basic.cancel`, which it sends to clients that
    /// advertise `consumer_cancel_notify`): its queue was deleted, or became unavailable
    /// on its node. The consumer subscribes again on the same channel, so the deliveries
    /// it holds can still be acknowledged, after declaring the queue again when this
    /// connection declares it. Only a queue that is gone and not ours to declare ends
    /// the consumer, with the reason.
    private func resubscribe(_ consumer: ConsumerRecord, with session: RabbitMQSession) throws {
        guard let channel = consumer.channel, !consumer.stopped else {
            consumers.removeAll { $0 === consumer }
            consumer.continuation.finish()
            return
        }
        consumer.consumerTag = nil
        do {
            for topology in declaredTopologies where topology.queues.contains(where: { $0.name == consumer.queue }) {
                try declare(topology.restricted(toQueue: consumer.queue), with: session)
            }
            consumer.consumerTag = try session.consume(queue: consumer.queue, on: channel)
            logger.warning("the broker cancelled a consumer; subscribed again", metadata: ["amqp.queue": "\(consumer.queue)"])
        } catch SessionError.channel(let closed, let error) {
            if closed == Self.controlChannel { try session.openChannel(closed) }
            consumers.removeAll { $0 === consumer }
            if closed != channel { session.closeChannel(channel) }
            machine.channelClosed(channel)
            consumer.channel = nil
            consumer.continuation.finish(
                throwing: AMQPError(error.code, "the broker cancelled the consumer of queue '\(consumer.queue)' and it could not subscribe again: \(error.message)", replyCode: error.replyCode, queue: consumer.queue)
            )
        }
    }

    private func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool) {
        defer { if publishChannelRefuses { replaceRefusingPublishChannel() } }
        if nacked, !publishChannelRefuses {
            // RabbitMQ 3.10 can leave a channel that published to a quorum queue while the
            // queue had no leader refusing every later publish to it, though a new leader
            // was elected within a second (seen in FlowClusterTests: 70,000 nacks in 30
            // minutes, where a fresh channel is confirmed at once). So a nack retires the
            // publish channel; the nacked message itself is reported to its caller.
            publishChannelRefuses = true
            logger.warning("the broker refused a publish (basic.nack); opening a fresh publish channel once the current one's confirms are in")
        }
        for publish in machine.confirmed(upTo: tag, multiple: multiple) {
            if nacked {
                publish.continuation.resume(throwing: AMQPError(.publishNacked, "the broker refused the message for exchange '\(publish.message.exchange)' with routing key '\(publish.message.routingKey)' (basic.nack): the queue may be full or unavailable; publish it again later", exchange: publish.message.exchange))
            } else if let error = publish.returnedError {
                publish.continuation.resume(throwing: error)
            } else {
                publish.continuation.resume()
            }
        }
    }

    /// Closes and reopens the publish channel once no publish on it awaits a confirm (so
    /// no confirm of the old channel can be taken for one of the new), then sends what
    /// waited for it.
    func replaceRefusingPublishChannel() {
        guard let session, machine.unconfirmed.isEmpty else { return }
        do {
            session.closeChannel(Self.publishChannel)
            try session.openChannel(Self.publishChannel)
            try session.enableConfirms(on: Self.publishChannel)
        } catch let failure as SessionError {
            connectionLost(failure.error)
            return
        } catch {
            connectionLost(AMQPError(.protocolFailure, "\(error)"))
            return
        }
        _ = machine.publishChannelReopened { _ in false }
        publishChannelRefuses = false
        let waiting = waitingForFreshChannel
        waitingForFreshChannel.removeAll()
        for publish in waiting { handle(.publish(publish)) }
    }

    private func complete(channel: UInt16) {
        guard let content = incoming.removeValue(forKey: channel) else { return }
        switch content.origin {
        case .delivery(let consumerTag, let deliveryTag, let redelivered):
            guard let consumer = consumers.first(where: { $0.consumerTag == consumerTag }), let epoch = machine.epoch(of: channel) else { return }
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
            let match = machine.unconfirmed.first { entry in
                let message = entry.publish.message
                return entry.publish.returnedError == nil && message.mandatory && message.exchange == content.exchange
                    && message.routingKey == content.routingKey && message.body == content.body
            }
            let exchangeName = content.exchange.isEmpty ? "the default exchange" : "exchange '\(content.exchange)'"
            match?.publish.returnedError = AMQPError(
                .unroutable,
                "no queue took the message published to \(exchangeName) with routing key '\(content.routingKey)' (\(replyCode) \(replyText)): check the routing key, or declare the topology with `flow topology declare`",
                replyCode: replyCode, exchange: content.exchange
            )
        }
    }
}
