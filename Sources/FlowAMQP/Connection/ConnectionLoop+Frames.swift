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
            consumers.removeAll { $0 === consumer }
            if let channel = consumer.channel {
                session.closeChannel(channel)
                machine.channelClosed(channel)
            }
            consumer.continuation.finish(throwing: AMQPError(.notFound, "the broker cancelled the consumer of queue '\(consumer.queue)', usually because the queue was deleted: declare it again and restart the consumer", queue: consumer.queue))
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

    private func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool) {
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
