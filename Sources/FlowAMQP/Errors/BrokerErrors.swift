import FlowCore

/// Turns the reply codes of `connection.close` and `channel.close` into errors that say
/// what to do, with the reply code, and the exchange or queue involved, as fields.
enum BrokerErrors {
    static func error(code: UInt16, text: String, operation: BrokerOperation, configuration: AMQPConfiguration) -> AMQPError {
        let broker = configuration.redactedURL
        let named = namedObject(in: text)
        let exchange = operation.exchange ?? (named?.kind == .exchange ? named?.name : nil)
        let queue = operation.queue ?? (named?.kind == .queue ? named?.name : nil)
        func error(_ kind: AMQPError.Code, _ message: String) -> AMQPError {
            AMQPError(kind, message, replyCode: code, exchange: exchange, queue: queue)
        }
        switch code {
        case 403 where operation == .logIn:
            return error(.accessRefused, "the broker at \(broker) refused user '\(configuration.user)' (\(text)): check the user name and password in AMQP_URL; RabbitMQ's guest user only logs in from localhost")
        case 403:
            return error(.accessRefused, "user '\(configuration.user)' may not \(operation) on vhost '\(configuration.vhost)' (\(text)): grant it with rabbitmqctl set_permissions")
        case 530:
            return error(.vhostNotAllowed, "vhost '\(configuration.vhost)' does not exist on \(broker) or user '\(configuration.user)' may not use it (\(text)): create it with `rabbitmqctl add_vhost \(configuration.vhost)` and grant access with `rabbitmqctl set_permissions -p \(configuration.vhost) \(configuration.user) '.*' '.*' '.*'`")
        case 404:
            return error(.notFound, "could not \(operation): \(text). Declare the topology with `flow topology declare` or import broker/definitions.json")
        case 406:
            return error(.preconditionFailed, "could not \(operation): \(text). An existing queue or exchange of that name has other settings; delete it or change the declaration to match")
        case 320:
            return error(.brokerError, "the broker closed the connection (\(text)); it was shut down or an operator closed the connection")
        default:
            return error(.brokerError, "the broker refused to \(operation): \(code) \(text)")
        }
    }

    /// What an existing queue holds for `argument`, when `text` is the broker's refusal of a
    /// declaration that differs from it there alone so far: `.some(nil)` for
    /// "... but current is none", `.some(5)` for "... but current is '5'", and nil for any
    /// other refusal.
    static func existingIntegerArgument(_ argument: String, in text: String) -> Int64?? {
        guard text.contains("inequivalent arg '\(argument)'"), let current = text.range(of: "but current is ") else { return nil }
        let rest = text[current.upperBound...]
        if rest.hasPrefix("none") { return .some(nil) }
        // "the value '5' of type 'signedint'" or "'5'", as the broker's versions spell it.
        guard let quote = rest.firstIndex(of: "'"), let value = rest[rest.index(after: quote)...].split(separator: "'").first, let number = Int64(value) else {
            return nil
        }
        return .some(number)
    }

    enum ObjectKind: Equatable {
        case exchange, queue
    }

    /// The object a RabbitMQ reply text is about: `NOT_FOUND - no exchange 'flow.x' in vhost '/'`
    /// names exchange `flow.x`. The one place the broker's words are read; everything after
    /// this compares fields.
    static func namedObject(in text: String) -> (kind: ObjectKind, name: String)? {
        for (word, kind) in [("exchange", ObjectKind.exchange), ("queue", .queue)] {
            guard let start = text.range(of: "\(word) '") else { continue }
            let rest = text[start.upperBound...]
            guard let end = rest.firstIndex(of: "'") else { continue }
            return (kind, String(rest[..<end]))
        }
        return nil
    }
}
