import FlowCore
import FlowTesting
import Foundation
import Testing
import Yams

/// The compose file read as a whole: every service that runs our image runs a real
/// `flow` subcommand, and the wiring (broker health, credentials, health checks) is what
/// the documentation promises. `ComposeRunTests` runs it under podman.
@Suite("compose.yaml")
struct ComposeFileTests {
    private func services() throws -> [String: [String: Any]] {
        let text = try String(contentsOf: Repository.file("compose.yaml"), encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        return try #require(document["services"] as? [String: [String: Any]])
    }

    /// The image a service names when no variable overrides it: `${FLOW_IMAGE:-x}` gives x.
    private func defaultImage(_ service: [String: Any]) -> String? {
        guard let image = service["image"] as? String else { return nil }
        guard image.hasPrefix("${"), image.hasSuffix("}"), let range = image.range(of: ":-") else { return image }
        return String(image[range.upperBound..<image.index(before: image.endIndex)])
    }

    private func runsOurImage(_ service: [String: Any]) -> Bool {
        defaultImage(service)?.hasPrefix("antifragileflow") == true
    }

    @Test("image names can be overridden, and default to the public images")
    func imageVariables() throws {
        let services = try services()
        let ours = services.filter { runsOurImage($0.value) }
        #expect(Set(ours.keys) == ["worker-default", "worker-ml", "worker-ml-gpu", "worker-openai", "coordinator"])
        for (name, service) in ours {
            #expect((service["image"] as? String) == "${FLOW_IMAGE:-antifragileflow:latest}", "\(name)")
        }
        for name in ["broker", "broker-definitions"] {
            #expect((services[name]?["image"] as? String) == "${FLOW_BROKER_IMAGE:-rabbitmq:3.13-management}", "\(name)")
        }
    }

    @Test("no variable has an empty default, which podman-compose 1.0.3 leaves unexpanded")
    func noEmptyDefaults() throws {
        let text = try String(contentsOf: Repository.file("compose.yaml"), encoding: .utf8)
        let lines = text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
        #expect(lines.filter { $0.contains(":-}") }.isEmpty)
    }

    @Test("there is one service per worker actor, the coordinator, the broker and its topology loader")
    func servicesExist() throws {
        let services = try services()
        #expect(services["coordinator"]?["command"] as? [String] == ["coordinator"])
        for name in ["broker", "broker-definitions", "worker-default", "worker-ml", "worker-openai", "coordinator"] {
            #expect(services[name] != nil, "compose.yaml has no service \(name)")
        }
        let commands = services.values.compactMap { $0["command"] as? [String] }
        for queue in WorkQueue.builtIn {
            #expect(commands.contains(["worker", queue.workerName]))
        }
    }

    @Test("every service running our image runs a real flow subcommand that accepts its arguments")
    func commandsAreReal() async throws {
        let flow = Repository.flowExecutable.path
        #expect(FileManager.default.isExecutableFile(atPath: flow), "build flow first: swift build")
        for (name, service) in try services() where runsOurImage(service) {
            let command = try #require(service["command"] as? [String], "service \(name) has no command")
            let result = try await ProcessRunner.run(flow, command + ["--check"], environment: ["AMQP_URL": "amqp://flow:secret@broker:5672/"])
            #expect(result.status == 0, "service \(name): flow \(command.joined(separator: " ")) --check failed: \(result.standardError)")
        }
    }

    @Test("our services wait for a healthy broker, take credentials from the environment and have health checks")
    func wiring() throws {
        let services = try services()
        for (name, service) in services where runsOurImage(service) {
            let dependsOn = try #require(service["depends_on"] as? [String: [String: String]], "\(name) has no depends_on")
            #expect(dependsOn["broker"]?["condition"] == "service_healthy")
            let environment = try #require(service["environment"] as? [String: Any])
            let url = try #require(environment["AMQP_URL"] as? String)
            #expect(url.contains("${RABBITMQ_PASSWORD"), "\(name) must take the broker password from the environment")
            #expect(!url.contains("guest"), "guest only logs in from localhost")
            let healthcheck = try #require(service["healthcheck"] as? [String: Any], "\(name) has no health check")
            let test = try #require(healthcheck["test"] as? [String])
            #expect(test.contains { $0.hasSuffix("/readyz") })
        }
        let broker = try #require(services["broker"])
        #expect((broker["healthcheck"] as? [String: Any]) != nil)
        let openai = try #require(services["worker-openai"]?["environment"] as? [String: Any])
        #expect((openai["OPENAI_API_KEY"] as? String) == "${OPENAI_API_KEY}")
        let gpu = try #require(services["worker-ml-gpu"])
        #expect((gpu["profiles"] as? [String]) == ["gpu"])
    }

    @Test("the broker service mounts the committed config and the loader imports broker/definitions.json")
    func brokerFiles() throws {
        let services = try services()
        let volumes = try #require(services["broker"]?["volumes"] as? [String])
        #expect(volumes.contains { $0.hasPrefix("./broker/rabbitmq.conf:") })
        #expect(volumes.contains { $0.hasPrefix("./broker/enabled_plugins:") })
        let loader = try #require(services["broker-definitions"])
        #expect((loader["volumes"] as? [String])?.contains { $0.hasPrefix("./broker/definitions.json:") } == true)
        #expect((loader["command"] as? [String])?.contains("import") == true)
    }
}
