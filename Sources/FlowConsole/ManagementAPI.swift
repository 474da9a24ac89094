import FlowCore
import FlowHTTP
import Foundation

/// RabbitMQ's management API, for what AMQP does not tell: unacknowledged counts, rates,
/// and the consumers of each queue.
public struct ManagementAPI: Sendable {
    public struct QueueInfo: Decodable, Sendable, Equatable {
        public var name: String
        public var messagesReady: Int?
        public var messagesUnacknowledged: Int?
        public var consumers: Int?
        public var type: String?
        public var messageStats: MessageStats?

        public struct MessageStats: Decodable, Sendable, Equatable {
            public var publishDetails: Rate?
            public var deliverGetDetails: Rate?
            public var ackDetails: Rate?
        }

        public struct Rate: Decodable, Sendable, Equatable {
            public var rate: Double?
        }
    }

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    public let baseURL: String
    public let user: String
    public let password: String
    public let vhost: String
    let http: CurlHTTPClient

    public init(baseURL: String, user: String, password: String, vhost: String, http: CurlHTTPClient = CurlHTTPClient(maximumIdleHandles: 2)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.user = user
        self.password = password
        self.vhost = vhost
        self.http = http
    }

    /// Every queue of the vhost.
    public func queues() async throws -> [QueueInfo] {
        try await get([QueueInfo].self, path: "/api/queues/\(Self.encode(vhost))")
    }

    /// One queue.
    public func queue(_ name: String) async throws -> QueueInfo {
        try await get(QueueInfo.self, path: "/api/queues/\(Self.encode(vhost))/\(Self.encode(name))")
    }

    private func get<Value: Decodable>(_ type: Value.Type, path: String) async throws -> Value {
        let credentials = Data("\(user):\(password)".utf8).base64EncodedString()
        let response: HTTPResponse
        do {
            response = try await http.send(HTTPRequest(url: baseURL + path, headers: [("Authorization", "Basic \(credentials)")], connectTimeout: .seconds(2), totalTimeout: .seconds(5)))
        } catch {
            throw Problem(description: "the management API at \(baseURL) cannot be reached (\(error)); pass --management-url or FLOW_MANAGEMENT_URL")
        }
        switch response.status {
        case 200:
            do {
                return try FlowJSON.decode(type, from: response.body)
            } catch {
                throw Problem(description: "the management API at \(baseURL) answered \(path) with something unexpected: \((error as? DecodingError).map(FlowJSON.describe) ?? "\(error)")")
            }
        case 401:
            throw Problem(description: "the management API at \(baseURL) refused user \(user) (401): the user needs the management tag")
        case 404:
            throw Problem(description: "the management API at \(baseURL) has no \(path) (404)")
        default:
            throw Problem(description: "the management API at \(baseURL) answered \(response.status) for \(path)")
        }
    }

    static func encode(_ segment: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return segment.addingPercentEncoding(withAllowedCharacters: allowed) ?? segment
    }
}
