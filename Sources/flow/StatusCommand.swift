import ArgumentParser
import FlowAMQP
import FlowCore
import FlowHTTP
import Foundation

/// `flow status`: the queues at a glance.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each queue's ready and unacknowledged messages and its consumers.",
        discussion: """
            Ready counts and consumers come over AMQP; unacknowledged counts (messages workers hold) come from \
            RabbitMQ's management API, and are shown as ? when it cannot be reached.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The management API (default: $FLOW_MANAGEMENT_URL, then http://<broker host>:<AMQP port + 10000>, which is 15672 for 5672).")
    var managementURL: String?

    @Option(help: .hidden)
    var topologyPrefix: String?

    func run() async throws {
        let logger = connection.logger(label: "flow.status")
        let amqpConfiguration = try connection.configuration(connectionName: "flow status")
        let amqp = try await connection.connect(as: "flow status", logger: logger)
        let names = topologyNames(topologyPrefix)
        let queues = names.workQueues.map(names.queue) + [names.coordinatorReplyQueue, names.name(Topology.workflowCommandQueue), names.deadLetterQueue]
        let management = ManagementAPI(
            baseURL: managementURL ?? ProcessInfo.processInfo.environment["FLOW_MANAGEMENT_URL"]
                ?? "http://\(amqpConfiguration.host):\(amqpConfiguration.port + 10000)",
            user: amqpConfiguration.user, password: amqpConfiguration.password, vhost: amqpConfiguration.vhost
        )
        let width = max(20, (queues.map(\.count).max() ?? 0) + 1)
        print("queue".padding(toLength: width, withPad: " ", startingAt: 0) + "   ready   unacked  consumers")
        var managementProblem: String?
        for name in queues {
            do {
                let status = try await amqp.inspectQueue(name)
                var unacked = "?"
                if managementProblem == nil {
                    do {
                        unacked = String(try await management.unacknowledged(queue: name))
                    } catch {
                        managementProblem = "\(error)"
                    }
                }
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + String(status.messageCount).leftPadded(8) + unacked.leftPadded(10) + String(status.consumerCount).leftPadded(11))
            } catch let error as AMQPError {
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + error.message)
            }
        }
        if let managementProblem {
            print("unacked: \(managementProblem)")
        }
        await amqp.close()
    }
}

/// The few calls `flow status` makes to RabbitMQ's management HTTP API.
struct ManagementAPI {
    let baseURL: String
    let user: String
    let password: String
    let vhost: String
    let http = CurlHTTPClient(maximumIdleHandles: 1)

    struct QueueInfo: Decodable {
        var messagesUnacknowledged: Int?
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    func unacknowledged(queue: String) async throws -> Int {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let path = "/api/queues/\(vhost.addingPercentEncoding(withAllowedCharacters: allowed) ?? vhost)/\(queue.addingPercentEncoding(withAllowedCharacters: allowed) ?? queue)"
        let credentials = Data("\(user):\(password)".utf8).base64EncodedString()
        let response: HTTPResponse
        do {
            response = try await http.send(HTTPRequest(url: baseURL + path, headers: [("Authorization", "Basic \(credentials)")], connectTimeout: .seconds(2), totalTimeout: .seconds(5)))
        } catch {
            throw Problem(description: "the management API at \(baseURL) cannot be reached (\(error)); pass --management-url or FLOW_MANAGEMENT_URL")
        }
        switch response.status {
        case 200:
            guard let info = try? FlowJSON.decoder.decode(QueueInfo.self, from: response.body) else {
                throw Problem(description: "the management API at \(baseURL) answered with something that is not a queue")
            }
            // Counts are refreshed every few seconds; a just-declared queue has none yet.
            return info.messagesUnacknowledged ?? 0
        case 401:
            throw Problem(description: "the management API at \(baseURL) refused user \(user) (401): the user needs the management tag")
        default:
            throw Problem(description: "the management API at \(baseURL) answered \(response.status) for \(path)")
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
