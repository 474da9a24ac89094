import ArgumentParser
import FlowAMQP
import FlowCore
import Foundation
import Logging
import ServiceLifecycle

/// `flow up`: a whole local stack in one command, for development.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start and supervise a local stack: the broker if none answers, the workers, the coordinator and the console.",
        discussion: """
            A process that exits is started again after a backoff. Logs stream with a prefix per process \
            (--quiet stops that). Ctrl-C or SIGTERM stops them all, the console first and the workers last.
            """
    )

    @Option(help: "Copies per worker, e.g. default=2,ml=1,openai=1 (0 leaves one out).")
    var workers: String?

    @Option(help: "The workers' data folder (default: $FLOW_DATA_DIR, then .flow/data).")
    var dataDir: String?

    @Option(help: "The coordinator's data folder (default: $FLOW_COORDINATOR_DATA_DIR, then .flow/coordinator).")
    var coordinatorDataDir: String?

    @Option(help: "The console's port.")
    var consolePort: Int = 9470

    @Option(help: "Give every process the next port from this one, instead of the standard ports (9464-9467, 9470): for a second stack beside the first.")
    var firstPort: Int?

    @Flag(help: "Do not stream the processes' logs.")
    var quiet = false

    @Option(help: "A model folder for flow ml serve to serve on --serve-port; with no OPENAI_API_KEY set, the OpenAI workers call it (docs/ml.md, \"Serving\").")
    var serveModel: String?

    @Option(help: "The port of flow ml serve.")
    var servePort = 8000

    @OptionGroup var connection: ConnectionOptions

    @Option(help: .hidden)
    var topologyPrefix: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let logger = connection.logger(label: "flow.up", defaultLevel: .info)
        let amqpConfiguration = try connection.configuration(connectionName: "flow up")
        if !StackSupervisor.isListening(port: amqpConfiguration.port) {
            try startBroker(port: amqpConfiguration.port, host: amqpConfiguration.host)
        }
        // The topology, so the processes and the console find every queue.
        let amqp = try await connection.connect(as: "flow up", logger: logger)
        let names = topologyNames(topologyPrefix)
        try await amqp.declare(names.topology)
        await amqp.close()

        let copies: [(worker: String, count: Int)]
        do {
            copies = try StackPlan.copies(workers, known: WorkerCommand.profiles.map(\.queue.workerName))
        } catch {
            throw ValidationError(error.description)
        }
        var common = ["--amqp-url", connection.amqpURL ?? environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:\(amqpConfiguration.port)/"]
        if let topologyPrefix { common += ["--topology-prefix", topologyPrefix] }
        let coordinatorRunning = firstPort == nil && StackSupervisor.isListening(port: 9467)
        let consoleRunning = firstPort == nil && StackSupervisor.isListening(port: consolePort)
        if coordinatorRunning { say("[up] a coordinator already answers on 9467: not starting another on the same store") }
        if consoleRunning { say("[up] a console already answers on \(consolePort): not starting another") }
        let plan = StackPlan(
            copies: copies, dataDir: dataDir ?? environment["FLOW_DATA_DIR"] ?? ".flow/data",
            coordinatorDataDir: coordinatorDataDir ?? environment["FLOW_COORDINATOR_DATA_DIR"] ?? ".flow/coordinator",
            consolePort: consolePort, runCoordinator: !coordinatorRunning, runConsole: !consoleRunning, common: common, firstPort: firstPort,
            served: serveModel.map { StackPlan.ServedModel(folder: $0, port: servePort, answersOpenAI: (environment["OPENAI_API_KEY"] ?? "").isEmpty) }
        )
        if let serveModel {
            say((environment["OPENAI_API_KEY"] ?? "").isEmpty
                ? "[up] serving \(serveModel) on http://127.0.0.1:\(servePort)/v1; the OpenAI workers call it (no OPENAI_API_KEY is set)"
                : "[up] serving \(serveModel) on http://127.0.0.1:\(servePort)/v1; the OpenAI workers call OpenAI (OPENAI_API_KEY is set)")
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let supervisor = StackSupervisor(plan: plan, executable: executable, quiet: quiet, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: supervisor)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        say("[up] stopped")
    }

    /// Starts a local node with `broker/start`, found beside the working folder.
    private func startBroker(port: Int, host: String) throws {
        guard host == "127.0.0.1" || host == "localhost" else {
            throw ValidationError("no broker answers at \(host):\(port), and flow up starts one only on this machine: start it, or point --amqp-url at one that runs")
        }
        let script = URL(fileURLWithPath: "broker/start")
        guard FileManager.default.isExecutableFile(atPath: script.path) else {
            throw ValidationError("no broker answers on 127.0.0.1:\(port), and there is no broker/start here to start one: run flow up from the repository's folder, or start RabbitMQ")
        }
        say("[up] no broker on port \(port): starting one with broker/start")
        let process = Process()
        process.executableURL = script.absoluteURL
        process.environment = ProcessInfo.processInfo.environment.merging(["FLOW_BROKER_PORT": String(port)]) { _, new in new }
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("broker/start failed with status \(process.terminationStatus)") }
    }
}

/// A line on standard output now, not when a buffer fills: `flow up` runs for hours, and
/// what reads its output (a terminal, a test) needs each line as it comes.
private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
