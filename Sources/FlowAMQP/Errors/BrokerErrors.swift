import FlowCore

/// Turns the reply codes of `connection.close` and `channel.close` into errors that say
/// what to do.
enum BrokerErrors {
    static func error(code: UInt16, text: String, action: String, configuration: AMQPConfiguration) -> AMQPError {
        let broker = configuration.redactedURL
        switch code {
        case 403 where action == "log in":
            return AMQPError(.accessRefused, "the broker at \(broker) refused user '\(configuration.user)' (\(text)): check the user name and password in AMQP_URL; RabbitMQ's guest user only logs in from localhost")
        case 403:
            return AMQPError(.accessRefused, "user '\(configuration.user)' may not \(action) on vhost '\(configuration.vhost)' (\(text)): grant it with rabbitmqctl set_permissions")
        case 530:
            return AMQPError(.vhostNotAllowed, "vhost '\(configuration.vhost)' does not exist on \(broker) or user '\(configuration.user)' may not use it (\(text)): create it with `rabbitmqctl add_vhost \(configuration.vhost)` and grant access with `rabbitmqctl set_permissions -p \(configuration.vhost) \(configuration.user) '.*' '.*' '.*'`")
        case 404:
            return AMQPError(.notFound, "could not \(action): \(text). Declare the topology with `flow topology declare` or import broker/definitions.json")
        case 406:
            return AMQPError(.preconditionFailed, "could not \(action): \(text). An existing queue or exchange of that name has other settings; delete it or change the declaration to match")
        case 320:
            return AMQPError(.brokerError, "the broker closed the connection (\(text)); it was shut down or an operator closed the connection")
        default:
            return AMQPError(.brokerError, "the broker refused to \(action): \(code) \(text)")
        }
    }
}
