import FlowCore
import FlowTesting
import Foundation
import Testing
import Yams

/// deploy/kubernetes/ read against the code: the command each Deployment runs, the
/// health endpoints and ports flow serves, the environment variables it reads, the
/// grace periods, and the queues KEDA scales on. No cluster runs here, so this is what
/// can be checked on paper, and it is checked exactly.
@Suite("deploy/kubernetes")
struct KubernetesManifestTests {
    typealias Object = [String: Any]
    static let folder = Repository.file("deploy/kubernetes")

    private func objects(_ file: String) throws -> [Object] {
        let text = try String(contentsOf: Self.folder.appendingPathComponent(file), encoding: .utf8)
        return try Yams.load_all(yaml: text).compactMap { $0 as? Object }
    }

    private func allObjects() throws -> [(file: String, object: Object)] {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        return try files.flatMap { file in try objects(file).map { (file, $0) } }
    }

    private func deployments() throws -> [Object] {
        try allObjects().map(\.object).filter { $0["kind"] as? String == "Deployment" }
    }

    private func name(_ object: Object) -> String? {
        (object["metadata"] as? Object)?["name"] as? String
    }

    private func container(_ deployment: Object) throws -> Object {
        let pod = try #require(((deployment["spec"] as? Object)?["template"] as? Object)?["spec"] as? Object)
        return try #require((pod["containers"] as? [Object])?.first)
    }

    private func podSpec(_ deployment: Object) throws -> Object {
        try #require(((deployment["spec"] as? Object)?["template"] as? Object)?["spec"] as? Object)
    }

    private func environment(_ container: Object) -> [String: Object] {
        Dictionary(((container["env"] as? [Object]) ?? []).compactMap { entry in (entry["name"] as? String).map { ($0, entry) } }, uniquingKeysWith: { first, _ in first })
    }

    @Test("a Deployment per worker actor, the GPU variant and the coordinator, each running a real flow command")
    func deploymentsRunFlow() async throws {
        let deployments = try deployments()
        #expect(Set(deployments.compactMap(name)) == ["worker-default", "worker-ml", "worker-ml-gpu", "worker-openai", "coordinator"])
        let flow = Repository.flowExecutable.path
        for deployment in deployments {
            let container = try container(deployment)
            let arguments = try #require(container["args"] as? [String])
            let values = environment(container).compactMapValues { $0["value"] as? String }
            var processEnvironment = values
            processEnvironment["AMQP_URL"] = "amqp://flow:secret@broker:5672/"
            let result = try await ProcessRunner.run(flow, arguments + ["--check"], environment: processEnvironment)
            #expect(result.status == 0, "\(name(deployment) ?? "?"): flow \(arguments.joined(separator: " ")) --check failed: \(result.standardError)")
        }
        let commands = try deployments.map { try container($0)["args"] as? [String] }
        for queue in WorkQueue.builtIn {
            #expect(commands.contains(["worker", queue.workerName]))
        }
    }

    @Test("probes ask /readyz and /healthz on the port flow serves, given by FLOW_METRICS_PORT")
    func probes() throws {
        for deployment in try deployments() {
            let container = try container(deployment)
            let label = name(deployment) ?? "?"
            let port = try #require(environment(container)["FLOW_METRICS_PORT"]?["value"] as? String, "\(label) sets no FLOW_METRICS_PORT")
            let ports = try #require(container["ports"] as? [Object])
            #expect(ports.contains { $0["name"] as? String == "metrics" && $0["containerPort"] as? Int == Int(port) }, "\(label)")
            let readiness = try #require((container["readinessProbe"] as? Object)?["httpGet"] as? Object)
            let liveness = try #require((container["livenessProbe"] as? Object)?["httpGet"] as? Object)
            #expect(readiness["path"] as? String == "/readyz", "\(label)")
            #expect(liveness["path"] as? String == "/healthz", "\(label)")
            #expect(readiness["port"] as? String == "metrics" && liveness["port"] as? String == "metrics", "\(label)")
            #expect(environment(container)["FLOW_METRICS_HOST"]?["value"] as? String == "0.0.0.0", "\(label): the kubelet probes from outside the pod's loopback")
        }
    }

    @Test("the pod's grace period outlasts flow's, and preStop waits for flow to finish its in-flight work")
    func gracePeriods() throws {
        for deployment in try deployments() {
            let label = name(deployment) ?? "?"
            let container = try container(deployment)
            let grace = try #require(try podSpec(deployment)["terminationGracePeriodSeconds"] as? Int, "\(label)")
            if let shutdown = (environment(container)["FLOW_SHUTDOWN_GRACE_SECONDS"]?["value"] as? String).flatMap(Int.init) {
                #expect(grace > shutdown + 10, "\(label): \(grace) s of grace leaves flow's \(shutdown) s no margin")
            } else {
                #expect(label == "coordinator", "\(label) sets no FLOW_SHUTDOWN_GRACE_SECONDS")
            }
            let command = try #require((((container["lifecycle"] as? Object)?["preStop"] as? Object)?["exec"] as? Object)?["command"] as? [String], "\(label) has no preStop")
            let script = try #require(command.last)
            #expect(script.contains("kill -TERM 1") && script.contains("while kill -0 1"), "\(label): preStop must stop flow and wait for it: \(script)")
        }
    }

    @Test("every environment variable a manifest sets is one flow reads")
    func environmentNames() throws {
        let sources = try FileManager.default.subpathsOfDirectory(atPath: Repository.file("Sources").path)
            .filter { $0.hasSuffix(".swift") }
            .map { try String(contentsOf: Repository.file("Sources/\($0)"), encoding: .utf8) }
            .joined()
        for deployment in try deployments() {
            for variable in environment(try container(deployment)).keys {
                #expect(sources.contains("\"\(variable)\""), "\(name(deployment) ?? "?") sets \(variable), which no source file reads")
            }
        }
    }

    @Test("KEDA scales each worker on its own queue's length, and a disruption budget covers every Deployment")
    func scalingAndBudgets() throws {
        let objects = try allObjects().map(\.object)
        let scaled = objects.filter { $0["kind"] as? String == "ScaledObject" }
        for queue in WorkQueue.builtIn {
            let target = "worker-\(queue.workerName)"
            let object = try #require(scaled.first { (($0["spec"] as? Object)?["scaleTargetRef"] as? Object)?["name"] as? String == target }, "no ScaledObject for \(target)")
            let trigger = try #require(((object["spec"] as? Object)?["triggers"] as? [Object])?.first)
            let metadata = try #require(trigger["metadata"] as? Object)
            #expect(trigger["type"] as? String == "rabbitmq")
            #expect(metadata["queueName"] as? String == queue.queueName, "\(target) scales on \(metadata["queueName"] ?? "nothing")")
            #expect(metadata["mode"] as? String == "QueueLength")
            #expect(metadata["hostFromEnv"] as? String == "AMQP_URL")
        }
        let budgets = objects.filter { $0["kind"] as? String == "PodDisruptionBudget" }
        for deployment in try deployments() where name(deployment) != "worker-ml-gpu" {
            let labels = try #require((((deployment["spec"] as? Object)?["template"] as? Object)?["metadata"] as? Object)?["labels"] as? [String: String])
            let covered = budgets.contains { budget in
                let selector = ((budget["spec"] as? Object)?["selector"] as? Object)?["matchLabels"] as? [String: String] ?? [:]
                return !selector.isEmpty && selector.allSatisfy { labels[$0.key] == $0.value }
            }
            #expect(covered, "no PodDisruptionBudget selects \(name(deployment) ?? "?")")
        }
    }

    @Test("kustomization.yaml lists every manifest but the GPU variant, and the GPU variant asks for a GPU")
    func kustomization() throws {
        let resources = try #require(try objects("kustomization.yaml").first?["resources"] as? [String])
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".yaml") && $0 != "kustomization.yaml" }
        #expect(Set(resources) == Set(files).subtracting(["worker-ml-gpu.yaml"]))
        let gpu = try #require(try deployments().first { name($0) == "worker-ml-gpu" })
        let limits = try #require((try container(gpu)["resources"] as? Object)?["limits"] as? Object)
        #expect(limits["nvidia.com/gpu"] as? Int == 1)
        let claims = try podSpec(gpu)["volumes"] as? [Object]
        #expect(claims?.contains { ($0["persistentVolumeClaim"] as? Object)?["claimName"] as? String == "flow-data" } == true, "the GPU worker shares the data volume")
    }
}
