import CRabbitMQ
import FlowCore
import Glibc

/// One frame from the broker, decoded into Swift values by the session: nothing of
/// rabbitmq-c's structs or buffers crosses into the connection loop.
enum Frame: Equatable {
    /// A publisher confirm (`basic.ack`, or `basic.nack` when `nacked`).
    case confirm(deliveryTag: UInt64, multiple: Bool, nacked: Bool)
    /// A delivery to a consumer begins; its header and body follow on the channel.
    case deliver(channel: UInt16, consumerTag: String, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
    /// A mandatory message no queue took comes back; its header and body follow.
    case returned(channel: UInt16, replyCode: UInt16, replyText: String, exchange: String, routingKey: String)
    /// The content header of the message being delivered or returned on `channel`.
    case contentHeader(channel: UInt16, properties: AMQPProperties, bodySize: Int)
    /// A piece of that message's body.
    case contentBody(channel: UInt16, bytes: [UInt8])
    /// The broker cancelled a consumer (`basic.cancel`, as when its queue was deleted).
    case consumerCancelled(consumerTag: String)
    /// The broker closed a channel; the session has answered `channel.close-ok`.
    case channelClosed(channel: UInt16, AMQPError)
    /// The broker closed the connection; the session has answered `connection.close-ok`.
    case connectionClosed(AMQPError)
    /// The broker stopped taking publishes (a memory or disk alarm), or started again.
    case blocked
    case unblocked
    /// A frame the loop has no use for (heartbeats are handled inside rabbitmq-c).
    case ignored
}

extension RabbitMQSession {
    /// Returns the next frame already available, or `nil` when none is. Also sends a
    /// heartbeat when one is due and detects a broker whose heartbeats stopped.
    func nextFrame() throws -> Frame? {
        var frame = amqp_frame_t()
        // One microsecond rather than zero: rabbitmq-c only checks the broker's heartbeat
        // deadline when it is earlier than the caller's deadline, and "immediately" is
        // earlier than everything.
        var timeout = timeval(tv_sec: 0, tv_usec: 1)
        let status = amqp_simple_wait_frame_noblock(connectionState, &frame, &timeout)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        if status == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue {
            throw SessionError.connection(AMQPError(.brokerUnreachable, "the broker at \(configuration.host):\(configuration.port) missed its heartbeats for \(2 * configuration.heartbeatSeconds)s: the network or the broker is down"))
        }
        try checkReadStatus(status)
        return decode(frame)
    }

    private func decode(_ frame: amqp_frame_t) -> Frame {
        let channel = frame.channel
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            return decode(frame.payload.method, channel: channel)
        case AMQP_FRAME_HEADER:
            let properties = frame.payload.properties.decoded.map {
                CDecoding.properties($0.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
            } ?? AMQPProperties()
            return .contentHeader(channel: channel, properties: properties, bodySize: Int(frame.payload.properties.body_size))
        case AMQP_FRAME_BODY:
            return .contentBody(channel: channel, bytes: CDecoding.bytes(frame.payload.body_fragment))
        default:
            return .ignored
        }
    }

    private func decode(_ method: amqp_method_t, channel: UInt16) -> Frame {
        switch method.id {
        case CRabbitMQ_BASIC_ACK_METHOD:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .confirm(deliveryTag: ack.delivery_tag, multiple: ack.multiple != 0, nacked: false)
        case CRabbitMQ_BASIC_NACK_METHOD:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .confirm(deliveryTag: nack.delivery_tag, multiple: nack.multiple != 0, nacked: true)
        case CRabbitMQ_BASIC_DELIVER_METHOD:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            return .deliver(
                channel: channel, consumerTag: CDecoding.string(deliver.consumer_tag), deliveryTag: deliver.delivery_tag,
                redelivered: deliver.redelivered != 0, exchange: CDecoding.string(deliver.exchange), routingKey: CDecoding.string(deliver.routing_key)
            )
        case CRabbitMQ_BASIC_RETURN_METHOD:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            return .returned(
                channel: channel, replyCode: returned.reply_code, replyText: CDecoding.string(returned.reply_text),
                exchange: CDecoding.string(returned.exchange), routingKey: CDecoding.string(returned.routing_key)
            )
        case CRabbitMQ_BASIC_CANCEL_METHOD:
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            return .consumerCancelled(consumerTag: CDecoding.string(cancel.consumer_tag))
        case CRabbitMQ_CHANNEL_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            acknowledgeChannelClose(channel)
            return .channelClosed(
                channel: channel,
                BrokerErrors.error(code: close.reply_code, text: CDecoding.string(close.reply_text), operation: .useChannel(channel), configuration: configuration)
            )
        case CRabbitMQ_CONNECTION_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            acknowledgeConnectionClose()
            return .connectionClosed(
                BrokerErrors.error(code: close.reply_code, text: CDecoding.string(close.reply_text), operation: .keepConnection, configuration: configuration)
            )
        case CRabbitMQ_CONNECTION_BLOCKED_METHOD:
            return .blocked
        case CRabbitMQ_CONNECTION_UNBLOCKED_METHOD:
            return .unblocked
        default:
            return .ignored
        }
    }
}
