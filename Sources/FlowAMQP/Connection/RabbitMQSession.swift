import CRabbitMQ
import FlowCore
import Glibc

/// One rabbitmq-c connection, opened and logged in.
///
/// Not thread-safe, like the C connection it wraps: exactly one ``ConnectionLoop`` thread
/// creates, uses and destroys it. Every failure is thrown as a ``SessionError`` that says
/// whether only a channel or the whole connection is gone.
final class RabbitMQSession {
    let connectionState: amqp_connection_state_t
    let configuration: AMQPConfiguration
    private var destroyed = false

    /// The socket's file descriptor, for `poll`.
    var socketDescriptor: Int32 { amqp_get_sockfd(connectionState) }

    /// The heartbeat the broker agreed to, in seconds; 0 means none.
    var negotiatedHeartbeat: Int32 { amqp_get_heartbeat(connectionState) }

    /// Whether rabbitmq-c holds bytes or decoded frames that `poll` on the socket would not report.
    var hasBufferedInput: Bool { amqp_frames_enqueued(connectionState) != 0 || amqp_data_in_buffer(connectionState) != 0 }

    /// Opens and logs in to `configuration`'s first endpoint; `opener` makes the TCP
    /// connection, so that a close of the owner can end the attempt.
    init(configuration: AMQPConfiguration, opener: SocketOpener) throws {
        self.configuration = configuration
        guard let state = amqp_new_connection() else {
            throw SessionError.connection(AMQPError(.protocolFailure, "rabbitmq-c could not allocate a connection (out of memory)"))
        }
        self.connectionState = state
        do {
            try open(with: opener)
        } catch {
            destroy()
            throw error
        }
    }

    deinit {
        destroy()
    }

    private func open(with opener: SocketOpener) throws {
        let endpoint = "\(configuration.host):\(configuration.port)"
        let socket: OpaquePointer?
        if configuration.useTLS {
            socket = amqp_ssl_socket_new(connectionState)
            guard let socket else {
                throw SessionError.connection(AMQPError(.tlsFailure, "rabbitmq-c could not create a TLS socket: is librabbitmq built with OpenSSL?"))
            }
            let tls = configuration.tls
            if let path = tls.caCertificatePath {
                guard amqp_ssl_socket_set_cacert(socket, path) == AMQP_STATUS_OK.rawValue else {
                    throw SessionError.connection(AMQPError(.tlsFailure, "could not read CA certificates from \(path): check the file exists and is PEM"))
                }
            }
            if let certificate = tls.clientCertificatePath, let key = tls.clientKeyPath {
                guard amqp_ssl_socket_set_key(socket, certificate, key) == AMQP_STATUS_OK.rawValue else {
                    throw SessionError.connection(AMQPError(.tlsFailure, "could not load client certificate \(certificate) with key \(key)"))
                }
            }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
            // rabbitmq-c makes the TLS connection itself, and its TCP connect cannot be cut
            // short: a connect of our own first finds a vanished node, and can be.
            Glibc.close(try opener.open(host: configuration.host, port: configuration.port, timeout: configuration.connectTimeout))
        } else {
            socket = amqp_tcp_socket_new(connectionState)
            guard let socket else {
                throw SessionError.connection(AMQPError(.protocolFailure, "rabbitmq-c could not create a TCP socket"))
            }
            // The connection's socket is closed with it, by `amqp_destroy_connection`.
            amqp_tcp_socket_set_sockfd(socket, try opener.open(host: configuration.host, port: configuration.port, timeout: configuration.connectTimeout))
        }

        var timeout = Self.cTimeval(configuration.connectTimeout)
        let status = configuration.useTLS ? amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &timeout) : AMQP_STATUS_OK.rawValue
        guard status == AMQP_STATUS_OK.rawValue else {
            let reason = String(cString: amqp_error_string2(status))
            if configuration.useTLS, status == AMQP_STATUS_SSL_ERROR.rawValue || status == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue
                || status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue || status == AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue
            {
                throw SessionError.connection(AMQPError(.tlsFailure, "TLS handshake with \(endpoint) failed (\(reason)): check the CA file and that the certificate names \(configuration.host)"))
            }
            throw SessionError.connection(AMQPError(.brokerUnreachable, "no AMQP broker answered at \(endpoint) (\(reason)): is RabbitMQ running there? Start a local one with broker/start, or point AMQP_URL at yours"))
        }

        var handshakeTimeout = Self.cTimeval(configuration.connectTimeout)
        amqp_set_handshake_timeout(connectionState, &handshakeTimeout)
        var rpcTimeout = Self.cTimeval(configuration.rpcTimeout)
        amqp_set_rpc_timeout(connectionState, &rpcTimeout)

        let arena = CArena()
        var clientProperties = arena.table([
            "connection_name": .string(configuration.connectionName),
            "product": "AntifragileFlow",
            "platform": "Swift",
            "capabilities": .table([
                "publisher_confirms": true,
                "consumer_cancel_notify": true,
                "basic.nack": true,
                "connection.blocked": true,
                "authentication_failure_close": true,
            ]),
        ])
        let reply = CRabbitMQ_login_with_properties(
            connectionState, configuration.vhost, 0, 131_072, Int32(configuration.heartbeatSeconds), &clientProperties,
            configuration.user, configuration.password
        )
        try check(reply, channel: 0, doing: .logIn)
    }

    // MARK: Channels

    func openChannel(_ channel: UInt16) throws {
        amqp_channel_open(connectionState, channel)
        try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .openChannel(channel))
    }

    func closeChannel(_ channel: UInt16) {
        _ = amqp_channel_close(connectionState, channel, Int32(AMQP_REPLY_SUCCESS))
    }

    func enableConfirms(on channel: UInt16) throws {
        amqp_confirm_select(connectionState, channel)
        try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .enableConfirms)
    }

    func setPrefetch(_ count: UInt16, on channel: UInt16) throws {
        amqp_basic_qos(connectionState, channel, 0, count, 0)
        try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .setPrefetch(count))
    }

    /// Answers a `channel.close` the broker sent, which AMQP requires before the channel
    /// number can be used again.
    func acknowledgeChannelClose(_ channel: UInt16) {
        var closeOK = amqp_channel_close_ok_t(dummy: 0)
        _ = amqp_send_method(connectionState, channel, CRabbitMQ_CHANNEL_CLOSE_OK_METHOD, &closeOK)
    }

    /// Answers a `connection.close` the broker sent.
    func acknowledgeConnectionClose() {
        var closeOK = amqp_connection_close_ok_t(dummy: 0)
        _ = amqp_send_method(connectionState, 0, CRabbitMQ_CONNECTION_CLOSE_OK_METHOD, &closeOK)
    }

    // MARK: Topology

    func declare(_ exchange: Topology.Exchange, on channel: UInt16) throws {
        let arena = CArena()
        amqp_exchange_declare(
            connectionState, channel, arena.bytes(exchange.name), arena.bytes(exchange.kind.rawValue), 0,
            exchange.durable ? 1 : 0, exchange.autoDelete ? 1 : 0, exchange.isInternal ? 1 : 0, arena.table(exchange.arguments)
        )
        try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .declareExchange(exchange.name))
    }

    func declare(_ queue: Topology.Queue, on channel: UInt16) throws {
        let arena = CArena()
        amqp_queue_declare(
            connectionState, channel, arena.bytes(queue.name), 0, queue.durable ? 1 : 0, queue.exclusive ? 1 : 0,
            queue.autoDelete ? 1 : 0, arena.table(queue.arguments)
        )
        try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .declareQueue(queue.name))
    }

    func bind(_ binding: Topology.Binding, on channel: UInt16) throws {
        let arena = CArena()
        amqp_queue_bind(
            connectionState, channel, arena.bytes(binding.queue), arena.bytes(binding.exchange), arena.bytes(binding.routingKey),
            arena.table(binding.arguments)
        )
        try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .bind(queue: binding.queue, exchange: binding.exchange))
    }

    /// Looks a queue up without creating it (`queue.declare` with `passive`).
    func inspectQueue(_ name: String, on channel: UInt16) throws -> QueueStatus {
        let arena = CArena()
        guard let result = amqp_queue_declare(connectionState, channel, arena.bytes(name), 1, 0, 0, 0, amqp_table_t(num_entries: 0, entries: nil)) else {
            try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .inspectQueue(name))
            throw SessionError.channel(channel, AMQPError(.protocolFailure, "queue.declare-ok for '\(name)' was empty"))
        }
        return QueueStatus(name: name, messageCount: Int(result.pointee.message_count), consumerCount: Int(result.pointee.consumer_count))
    }

    func deleteQueue(_ name: String, on channel: UInt16) throws -> Int {
        let arena = CArena()
        guard let result = amqp_queue_delete(connectionState, channel, arena.bytes(name), 0, 0) else {
            try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .deleteQueue(name))
            return 0
        }
        return Int(result.pointee.message_count)
    }

    func deleteExchange(_ name: String, on channel: UInt16) throws {
        let arena = CArena()
        amqp_exchange_delete(connectionState, channel, arena.bytes(name), 0)
        try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .deleteExchange(name))
    }

    // MARK: Messages

    func consume(queue: String, on channel: UInt16) throws -> String {
        let arena = CArena()
        guard let result = amqp_basic_consume(connectionState, channel, arena.bytes(queue), amqp_bytes_t(len: 0, bytes: nil), 0, 0, 0, amqp_table_t(num_entries: 0, entries: nil)) else {
            try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .consume(queue: queue))
            throw SessionError.channel(channel, AMQPError(.protocolFailure, "basic.consume-ok for '\(queue)' was empty"))
        }
        return CDecoding.string(result.pointee.consumer_tag)
    }

    func cancelConsumer(tag: String, on channel: UInt16) throws {
        let arena = CArena()
        amqp_basic_cancel(connectionState, channel, arena.bytes(tag))
        try check(amqp_get_rpc_reply(connectionState), channel: channel, doing: .cancelConsumer(tag: tag))
    }

    /// Writes a `basic.publish` and its content. Returns once the bytes are handed to the
    /// socket; the confirm arrives later as a `basic.ack` frame.
    func publish(_ message: AMQPMessage, on channel: UInt16) throws {
        let arena = CArena()
        var properties = arena.properties(message.properties)
        let status = amqp_basic_publish(
            connectionState, channel, arena.bytes(message.exchange), arena.bytes(message.routingKey),
            message.mandatory ? 1 : 0, 0, &properties, arena.bytes(message.body)
        )
        try checkStatus(status, doing: .publish(exchange: message.exchange))
    }

    func settle(_ kind: AMQPDelivery.Settlement, deliveryTag: UInt64, on channel: UInt16) throws {
        let status: Int32
        switch kind {
        case .ack: status = amqp_basic_ack(connectionState, channel, deliveryTag, 0)
        case .nack(let requeue): status = amqp_basic_nack(connectionState, channel, deliveryTag, 0, requeue ? 1 : 0)
        case .reject(let requeue): status = amqp_basic_reject(connectionState, channel, deliveryTag, requeue ? 1 : 0)
        }
        try checkStatus(status, doing: .settle(deliveryTag: deliveryTag))
    }

    func releaseBuffers() {
        amqp_maybe_release_buffers(connectionState)
    }

    /// Closes the connection politely when it still works, then frees it.
    func close() {
        guard !destroyed else { return }
        _ = amqp_connection_close(connectionState, Int32(AMQP_REPLY_SUCCESS))
        destroy()
    }

    /// Frees the connection without a closing handshake, for a connection already broken.
    func destroy() {
        guard !destroyed else { return }
        destroyed = true
        amqp_destroy_connection(connectionState)
    }

    // MARK: Errors

    func checkReadStatus(_ status: Int32) throws {
        try checkStatus(status, doing: .readFrames)
    }

    private func checkStatus(_ status: Int32, doing operation: BrokerOperation) throws {
        guard status < 0 else { return }
        let reason = String(cString: amqp_error_string2(status))
        throw SessionError.connection(AMQPError(.brokerUnreachable, "lost the connection to \(configuration.host):\(configuration.port) while trying to \(operation) (\(reason))"))
    }

    private func check(_ reply: amqp_rpc_reply_t, channel: UInt16, doing operation: BrokerOperation) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == CRabbitMQ_CHANNEL_CLOSE_METHOD, let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                acknowledgeChannelClose(channel)
                throw SessionError.channel(channel, BrokerErrors.error(code: close.reply_code, text: CDecoding.string(close.reply_text), operation: operation, configuration: configuration))
            }
            if reply.reply.id == CRabbitMQ_CONNECTION_CLOSE_METHOD, let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                acknowledgeConnectionClose()
                throw SessionError.connection(BrokerErrors.error(code: close.reply_code, text: CDecoding.string(close.reply_text), operation: operation, configuration: configuration))
            }
            throw SessionError.connection(AMQPError(.protocolFailure, "the broker answered '\(operation)' with unexpected method \(reply.reply.id)"))
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let reason = String(cString: amqp_error_string2(reply.library_error))
            if operation == .logIn, reply.library_error == AMQP_STATUS_CONNECTION_CLOSED.rawValue || reply.library_error == AMQP_STATUS_SOCKET_CLOSED.rawValue {
                // Brokers without authentication_failure_close just drop the socket on bad credentials.
                throw SessionError.connection(BrokerErrors.error(code: 403, text: "ACCESS_REFUSED (connection closed during login)", operation: operation, configuration: configuration))
            }
            throw SessionError.connection(AMQPError(.brokerUnreachable, "could not \(operation) on \(configuration.host):\(configuration.port) (\(reason))"))
        default:
            throw SessionError.connection(AMQPError(.protocolFailure, "rabbitmq-c gave no reply while trying to \(operation)"))
        }
    }

    private static func cTimeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}

/// A failure inside a ``RabbitMQSession``, and how much of the connection it took down.
enum SessionError: Error {
    /// The broker closed this channel; the connection still works.
    case channel(UInt16, AMQPError)
    /// The connection is gone.
    case connection(AMQPError)

    var error: AMQPError {
        switch self {
        case .channel(_, let error), .connection(let error): return error
        }
    }
}
