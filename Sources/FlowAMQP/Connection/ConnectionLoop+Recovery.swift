import FlowCore
import Foundation

extension ConnectionLoop {
    // MARK: Connecting and recovering

    /// The first connection: every endpoint is tried once, in this connection's order,
    /// so a service starts while one node of its cluster is down.
    func connectToAnyEndpoint() throws {
        var failures: [AMQPError] = []
        for _ in endpointOrder {
            do {
                try connect()
                return
            } catch {
                failures.append((error as? SessionError)?.error ?? AMQPError(.protocolFailure, "\(error)"))
                endpointCursor += 1
            }
        }
        guard failures.count > 1 else { throw failures[0] }
        // Wrong credentials or a missing vhost are the same on every node: say it once.
        if Set(failures.map(\.code)).count == 1, failures[0].code != .brokerUnreachable { throw failures[0] }
        throw AMQPError(
            failures[0].code,
            "none of the \(failures.count) brokers in the URL could be opened: " + failures.map(\.message).joined(separator: "; "),
            replyCode: failures[0].replyCode
        )
    }

    func connect() throws {
        let endpoint = endpointOrder[endpointCursor % endpointOrder.count]
        let opener = SocketOpener(wakeDescriptor: wakeDescriptor) { [self] in lock.withLock { closeRequested } }
        let session = try RabbitMQSession(configuration: configuration.pinned(to: endpoint), opener: opener)
        do {
            try session.openChannel(Self.publishChannel)
            try session.enableConfirms(on: Self.publishChannel)
            try session.openChannel(Self.controlChannel)
            machine.opening()
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
        machine.connected()
        lock.withLock {
            connected = true
            connectedEndpoint = endpoint
        }
        logger.info(
            "connected to the broker",
            metadata: ["amqp.url": "\(session.configuration.redactedURL)", "amqp.node": "\(endpoint)", "amqp.heartbeat": "\(session.negotiatedHeartbeat)"]
        )
        let waiting = waitingForConnection
        waitingForConnection.removeAll()
        for command in waiting { handle(command) }
    }

    func attemptReconnect() {
        do {
            try connect()
            lock.withLock { recoveries += 1 }
        } catch {
            // A close ended the attempt; the loop finishes with the next look at its inbox.
            if lock.withLock({ closeRequested }) { return }
            let reason = (error as? SessionError)?.error.message ?? "\(error)"
            let failedEndpoint = endpointOrder[endpointCursor % endpointOrder.count]
            endpointCursor += 1
            machine.reconnectFailed(at: .now, random: Double.random(in: 0..<1))
            logger.warning(
                "reconnecting to the broker failed; trying again",
                metadata: [
                    "amqp.node": "\(failedEndpoint)", "amqp.next_node": "\(endpointOrder[endpointCursor % endpointOrder.count])",
                    "error": "\(reason)", "retry.delay": "\(machine.untilReconnect(from: .now) ?? .zero)",
                ]
            )
        }
    }

    /// Gives up the broken connection and arranges what it held: unconfirmed publishes are
    /// sent again after reconnecting (or reported), consumers resume on the next connection.
    func connectionLost(_ error: AMQPError) {
        session?.destroy()
        session = nil
        let lostEndpoint = endpointOrder[endpointCursor % endpointOrder.count]
        // The node that dropped the connection is likely going down: the next attempt
        // goes to the next node, and comes back to this one only after the others.
        endpointCursor += 1
        lock.withLock {
            connected = false
            connectedEndpoint = nil
        }
        incoming.removeAll()
        for consumer in consumers {
            consumer.channel = nil
            consumer.consumerTag = nil
        }
        let recovers = configuration.recovery.enabled && closeRequests.isEmpty
        let orphans = machine.lost(at: .now, recovers: recovers, random: Double.random(in: 0..<1)) { $0.retryOnReconnect }
        for publish in orphans.fail {
            publish.continuation.resume(throwing: AMQPError(.connectionLost, "the connection dropped before the broker confirmed the message (\(error.message)); it may or may not have been delivered"))
        }
        waitingForConnection.insert(contentsOf: (orphans.resend + waitingForFreshChannel).map(Command.publish), at: 0)
        waitingForFreshChannel.removeAll()
        publishChannelRefuses = false

        guard recovers else {
            logger.error("the connection to the broker dropped", metadata: ["error": "\(error.message)"])
            finished = true
            finishEverything(with: error)
            return
        }
        logger.warning(
            "the connection to the broker dropped; reconnecting",
            metadata: [
                "amqp.node": "\(lostEndpoint)", "amqp.next_node": "\(endpointOrder[endpointCursor % endpointOrder.count])",
                "error": "\(error.message)", "unconfirmed": "\(orphans.resend.count + orphans.fail.count)",
            ]
        )
    }

    /// Ends every waiting caller and consumer, once, when the loop stops for good.
    func finishEverything(with error: AMQPError) {
        lock.withLock { acceptsCommands = false }
        let remaining = takeInbox()
        let waitingForChannel = waitingForFreshChannel.map(Command.publish)
        waitingForFreshChannel.removeAll()
        for command in waitingForConnection + waitingForChannel + remaining {
            if case .publish(let publish) = command, error.code != .closed {
                publish.continuation.resume(throwing: AMQPError(.connectionLost, "the connection dropped before the message was sent (\(error.message)); it was not delivered"))
            } else {
                fail(command, with: error)
            }
        }
        waitingForConnection.removeAll()
        for publish in machine.closed() {
            publish.continuation.resume(throwing: AMQPError(.connectionLost, "the connection closed before the broker confirmed the message: \(error.message)"))
        }
        for consumer in consumers {
            if error.code == .closed { consumer.continuation.finish() } else { consumer.continuation.finish(throwing: error) }
        }
        consumers.removeAll()
        session?.close()
        session = nil
        lock.withLock {
            connected = false
            connectedEndpoint = nil
        }
        for request in closeRequests { request.resume() }
        closeRequests.removeAll()
    }

    /// Re-opens a channel the broker closed, so one failed operation does not stop the others.
    func recoverChannel(_ channel: UInt16, after error: AMQPError) {
        guard let session else { return }
        incoming[channel] = nil
        machine.channelClosed(channel)
        do {
            switch channel {
            case Self.publishChannel:
                try session.openChannel(channel)
                try session.enableConfirms(on: channel)
                // The error names the exchange that closed the channel; publishes to other
                // exchanges were innocent bystanders and go out again.
                let orphans = machine.publishChannelReopened { publish in error.exchange != nil && publish.message.exchange == error.exchange }
                for publish in orphans.fail { publish.continuation.resume(throwing: error) }
                for publish in orphans.resend { handle(.publish(publish)) }
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
}
