import FlowCore
import Glibc

/// Opens the TCP connection to a broker node in a way the connection's owner can cut short.
///
/// rabbitmq-c's own connect blocks its thread for up to the connect timeout when a node's
/// address has vanished (a container gone with its network): no refusal ever comes. A
/// `close()` of the connection would wait behind it, so a service asked to stop while it
/// reconnects took two timeouts to exit. Here the connect is non-blocking and `poll`
/// watches the loop's wake descriptor beside the socket, so a close ends the attempt at once.
/// rabbitmq-c has no such hook, which is why this one piece of socket code is ours.
struct SocketOpener {
    /// The loop's eventfd, written when a command arrives.
    let wakeDescriptor: Int32
    /// Whether the owner has asked to close, checked when the wake descriptor fires.
    let closeRequested: () -> Bool

    /// A connected, non-blocking socket with `TCP_NODELAY`, the form rabbitmq-c's sockets take.
    func open(host: String, port: Int, timeout: Duration) throws(SessionError) -> Int32 {
        let endpoint = "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        hints.ai_flags = AI_ADDRCONFIG
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &found)
        guard resolved == 0, let found else {
            throw unreachable(endpoint, "could not resolve \(host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(found) }

        let deadline = ContinuousClock.now + timeout
        var lastFailure = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = found
        while let address = next {
            next = address.pointee.ai_next
            let descriptor = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), address.pointee.ai_protocol)
            guard descriptor >= 0 else {
                lastFailure = String(cString: strerror(errno))
                continue
            }
            do throws(SessionError) {
                if connect(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) != 0 {
                    guard errno == EINPROGRESS else { throw unreachable(endpoint, String(cString: strerror(errno))) }
                    try waitUntilConnected(descriptor, endpoint: endpoint, deadline: deadline)
                }
                var one: Int32 = 1
                _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return descriptor
            } catch {
                Glibc.close(descriptor)
                if error.error.code == .closed { throw error }
                lastFailure = error.error.message
            }
        }
        throw unreachable(endpoint, lastFailure)
    }

    private func waitUntilConnected(_ descriptor: Int32, endpoint: String, deadline: ContinuousClock.Instant) throws(SessionError) {
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw unreachable(endpoint, "connection timed out") }
            var descriptors = [
                pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0),
                pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            let milliseconds = Int32(clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
            if ready < 0, errno != EINTR { throw unreachable(endpoint, String(cString: strerror(errno))) }
            if descriptors[1].revents & Int16(POLLIN) != 0 {
                // The loop reads its inbox after this returns, so draining the count loses no command.
                var count: UInt64 = 0
                _ = read(wakeDescriptor, &count, MemoryLayout<UInt64>.size)
                if closeRequested() {
                    throw .connection(AMQPError(.closed, "the connection was closed while connecting to \(endpoint)"))
                }
            }
            if descriptors[0].revents != 0 {
                var failure: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &failure, &length)
                guard failure == 0 else { throw unreachable(endpoint, String(cString: strerror(failure))) }
                return
            }
        }
    }

    private func unreachable(_ endpoint: String, _ reason: String) -> SessionError {
        .connection(AMQPError(.brokerUnreachable, "no AMQP broker answered at \(endpoint) (\(reason)): is RabbitMQ running there? Start a local one with broker/start, or point AMQP_URL at yours"))
    }
}
