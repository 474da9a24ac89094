import FlowCore
import Foundation

/// `health_check`: the broker, the queues, the data folder's free space and whether it is
/// writable. Reports `degraded` with the reasons rather than failing, so the caller always
/// gets a picture.
public enum HealthCheck: ActivityDeclaration {
    public static let name = "health_check"

    public static let queue = WorkQueue.default

    public static var startToCloseTimeout: Duration { .seconds(30) }

    public typealias Input = Empty

    public struct QueueHealth: Codable, Sendable, Equatable {
        public var name: String
        public var ready: Int?
        public var consumers: Int?
        public var problem: String?

        public init(name: String, ready: Int? = nil, consumers: Int? = nil, problem: String? = nil) {
            self.name = name
            self.ready = ready
            self.consumers = consumers
            self.problem = problem
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var status: String
        public var problems: [String]
        public var broker: String
        public var queues: [QueueHealth]
        public var dataFolder: String
        public var freeBytes: Int64?
        public var writable: Bool
        public var workerID: String


        public init(status: String, problems: [String], broker: String, queues: [QueueHealth], dataFolder: String, freeBytes: Int64? = nil, writable: Bool, workerID: String) {
            self.status = status
            self.problems = problems
            self.broker = broker
            self.queues = queues
            self.dataFolder = dataFolder
            self.freeBytes = freeBytes
            self.writable = writable
            self.workerID = workerID
        }
    }

    /// Below this much free space the data folder counts as a problem.
    public static let minimumFreeBytes: Int64 = 512 * 1024 * 1024
}
