import FlowAMQP
import Foundation

/// A RabbitMQ cluster of its own on loopback, for the tests that kill a node: started and
/// stopped with the repository's `broker/start-cluster` and `broker/stop-cluster`, with
/// its nodes' files in a temporary folder. Every command runs off the cooperative pool,
/// since starting three nodes takes most of a minute.
public final class TestCluster: Sendable {
    public let ports: [Int]
    public let root: String

    /// Every node, in the form `AMQP_URL` takes.
    public var url: String { ports.map { "amqp://guest:guest@127.0.0.1:\($0)/" }.joined(separator: ",") }

    private var environment: [String: String] {
        ["FLOW_CLUSTER_PORT": String(ports[0]), "FLOW_BROKER_ROOT": root]
    }

    private init(ports: [Int], root: String) {
        self.ports = ports
        self.root = root
    }

    /// Starts `nodes` nodes on the ports from `firstPort`. A cluster left there by a test
    /// run that was killed is stopped and wiped first.
    public static func start(nodes: Int = 3, firstPort: Int) async throws -> TestCluster {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flow-test-cluster-\(firstPort)").path
        let cluster = TestCluster(ports: Array(firstPort..<(firstPort + nodes)), root: root)
        _ = try await cluster.run("broker/stop-cluster", ["--wipe"])
        try? FileManager.default.removeItem(atPath: root)
        let started = try await cluster.run("broker/start-cluster", [String(nodes)])
        guard started.status == 0 else {
            throw AMQPError(.brokerUnreachable, "broker/start-cluster \(nodes) failed: \(started.standardError)\(started.standardOutput)")
        }
        return cluster
    }

    /// Runs `body` with a cluster started for it, and stops the cluster after, whether
    /// `body` returned or threw.
    public static func with<Result: Sendable>(nodes: Int = 3, firstPort: Int, _ body: (TestCluster) async throws -> Result) async throws -> Result {
        try await ExclusiveTests.run {
            let cluster = try await start(nodes: nodes, firstPort: firstPort)
            return try await withCleanup { try await body(cluster) } cleanup: { await cluster.stop() }
        }
    }

    /// The node name of the node on `port`, as the broker reports it.
    public static func nodeName(port: Int) -> String { "flow\(port)@localhost" }

    /// The port of a node name the broker reports.
    public static func port(ofNode name: String) -> Int? {
        Int(name.dropFirst("flow".count).prefix { $0.isNumber })
    }

    /// Runs `rabbitmqctl` against the node on `port`.
    @discardableResult
    public func control(port: Int, _ arguments: [String]) async throws -> ProcessOutput {
        let result = try await run("broker/ctl", ["--port", String(port)] + arguments)
        guard result.status == 0 else {
            throw AMQPError(.brokerError, "rabbitmqctl \(arguments.joined(separator: " ")) on port \(port) failed: \(result.standardError)")
        }
        return result
    }

    /// A queue's leader and members, and which members are online, as one node sees them.
    public func replicas(of queue: String, askingPort: Int) async throws -> (leader: Int?, members: Set<Int>, online: Set<Int>) {
        let listed = try await control(port: askingPort, ["list_queues", "name", "leader", "members", "online", "--formatter", "json"])
        let rows = try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [[String: Any]] ?? []
        guard let row = rows.first(where: { $0["name"] as? String == queue }) else {
            throw AMQPError(.notFound, "node \(askingPort) lists no queue '\(queue)'")
        }
        func ports(_ key: String) -> Set<Int> { Set((row[key] as? [String] ?? []).compactMap(Self.port(ofNode:))) }
        return ((row["leader"] as? String).flatMap(Self.port(ofNode:)), ports("members"), ports("online"))
    }

    /// The client-provided names of the connections open to each node (by its AMQP port),
    /// cluster-wide, as the node on `askingPort` lists them.
    public func connectionNames(askingPort: Int) async throws -> [Int: [String]] {
        let listed = try await control(port: askingPort, ["list_connections", "client_properties", "port", "--formatter", "json"])
        let rows = try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [[String: Any]] ?? []
        return Dictionary(grouping: rows) { $0["port"] as? Int ?? 0 }.mapValues { rows in rows.compactMap { row -> String? in
            // client_properties is a list of [name, type, value] triples.
            let properties = row["client_properties"] as? [[Any]] ?? []
            return properties.first { $0.first as? String == "connection_name" }.flatMap { $0.last as? String }
        } }
    }

    /// SIGKILLs the node on `port` (its Erlang VM, whose pid the node wrote at start).
    public func kill(port: Int) throws {
        let pidFile = "\(root)/\(port)/rabbitmq.pid"
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw AMQPError(.brokerError, "no pid in \(pidFile): is the node on port \(port) running?")
        }
        Foundation.kill(pid, SIGKILL)
    }

    /// Starts the node on `port` again; it rejoins the cluster it was in.
    public func restart(port: Int) async throws {
        let result = try await run("broker/start", [], extra: ["FLOW_BROKER_PORT": String(port), "FLOW_BROKER_DEFINITIONS": "none"])
        guard result.status == 0 else {
            throw AMQPError(.brokerUnreachable, "broker/start on port \(port) failed: \(result.standardError)\(result.standardOutput)")
        }
    }

    /// Stops every node and deletes their files. With `FLOW_TEST_CLUSTER_LOGS` set to a
    /// folder, the nodes' logs are copied there first, for a failure to be read afterwards.
    public func stop() async {
        if let keep = ProcessInfo.processInfo.environment["FLOW_TEST_CLUSTER_LOGS"] {
            let target = URL(fileURLWithPath: keep).appendingPathComponent("\(ports[0])-\(UUID().uuidString.prefix(8))")
            try? FileManager.default.copyItem(atPath: root, toPath: target.path)
        }
        _ = try? await run("broker/stop-cluster", ["--wipe"])
        try? FileManager.default.removeItem(atPath: root)
    }

    private func run(_ script: String, _ arguments: [String], extra: [String: String] = [:]) async throws -> ProcessOutput {
        let environment = self.environment.merging(extra) { _, new in new }
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run(Repository.file(script).path, arguments, environment: environment) })
            }
        }
    }
}
