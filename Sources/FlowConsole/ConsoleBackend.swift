import FlowClient
import FlowContracts
import FlowCore
import FlowObservability
import FlowDeadLetters
import FlowHTTP
import FlowTransport
import Foundation

/// Everything the pages show and every action they take, read and done through the broker:
/// the coordinator's queries and commands, the dead-letter tools, the actors' activities,
/// the management API and the processes' `/healthz` and `/metrics`.
public struct ConsoleBackend: Sendable {
    let client: CoordinatorClient
    let transport: any MessageTransport
    let deadLetters: DeadLetterQueue
    let management: ManagementAPI
    let configuration: ConsoleConfiguration
    let http: CurlHTTPClient

    public init(client: CoordinatorClient, transport: any MessageTransport, configuration: ConsoleConfiguration) {
        self.client = client
        self.transport = transport
        self.configuration = configuration
        self.deadLetters = DeadLetterQueue(transport: transport, names: configuration.names, audit: configuration.auditLog.map(AuditLog.init(file:)))
        self.http = CurlHTTPClient(maximumIdleHandles: 8)
        self.management = ManagementAPI(
            baseURL: configuration.managementURL, user: configuration.managementUser, password: configuration.managementPassword,
            vhost: configuration.vhost, http: http
        )
    }

    // MARK: Workflows

    func workflows(_ query: WorkflowQuery.List) async throws -> WorkflowPage {
        try await requireConsumer(of: configuration.names.name(Topology.workflowCommandQueue), command: "flow coordinator")
        return try await client.query(.list, query, as: WorkflowPage.self)
    }

    func workflow(_ id: String) async throws -> (WorkflowDescription, [WorkflowHistoryEvent]) {
        try await requireConsumer(of: configuration.names.name(Topology.workflowCommandQueue), command: "flow coordinator")
        let description = try await client.query(.describe, WorkflowQuery.Describe(workflowID: id), as: WorkflowDescription.self)
        var events: [WorkflowHistoryEvent] = []
        var after: Int64?
        // The page shows the first thousand events; the CLI and the query give them all.
        repeat {
            let page = try await client.query(.history, WorkflowQuery.History(workflowID: id, after: after, limit: WorkflowQuery.maximumPageSize), as: WorkflowHistoryPage.self)
            events += page.events
            after = page.nextAfter
        } while after != nil && events.count < 1000
        return (description, events)
    }

    func cancel(workflowID: String) async throws -> CommandAnswer {
        try await client.command(.cancel, WorkflowCommand.Cancel(workflowID: workflowID, reason: "cancelled from the console by \(configuration.operatorName)"))
    }

    /// Pauses (`paused`) or unpauses a workflow, naming the operator in its history.
    func pause(workflowID: String, paused: Bool) async throws -> CommandAnswer {
        let command = WorkflowCommand.Pause(workflowID: workflowID, reason: paused ? "paused from the console by \(configuration.operatorName)" : nil)
        return try await client.command(paused ? .pause : .unpause, command)
    }

    func schedules() async throws -> ScheduleList {
        try await requireConsumer(of: configuration.names.name(Topology.workflowCommandQueue), command: "flow coordinator")
        return try await client.query(.schedules, WorkflowQuery.Schedules(), as: ScheduleList.self)
    }

    // MARK: Dead letters

    func deadLetterList(_ filter: DeadLetterFilter) async throws -> [DeadLetterSummary] {
        try await deadLetters.list(filter)
    }

    /// One dead letter as the page shows it: the summary, its headers and its body.
    func deadLetter(id: String) async throws -> (DeadLetterSummary, headers: [(String, String)], body: String)? {
        try await deadLetters.withHeldMessages { letters -> (DeadLetterSummary, headers: [(String, String)], body: String)? in
            guard let letter = letters.first(where: { $0.displayID == id }) else { return nil }
            let headers = (letter.delivery.properties.headers ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
            let body = (try? JSONValue(parsing: letter.delivery.body)).flatMap { try? FlowJSON.encodeText($0, pretty: true) }
                ?? String(decoding: letter.delivery.body, as: UTF8.self)
            return (DeadLetterSummary(letter), headers, body)
        }
    }

    func replay(_ filter: DeadLetterFilter, dryRun: Bool) async throws -> DeadLetterQueue.ReplayReport {
        try await deadLetters.replay(filter, dryRun: dryRun, operatorName: configuration.operatorName)
    }

    func purge(_ filter: DeadLetterFilter) async throws -> [String] {
        try await deadLetters.purge(filter, operatorName: configuration.operatorName)
    }

    // MARK: Training jobs, through the ML actor's own activities

    func trainingJobs() async throws -> [TrainingJob] {
        try await call(ListTrainingJobs.self, ListTrainingJobs.Input(limit: 200)).jobs
    }

    func trainingJob(_ id: String) async throws -> TrainingJob {
        try await call(GetTrainingJob.self, GetTrainingJob.Input(jobID: id))
    }

    func cancelTraining(_ id: String) async throws -> TrainingJob {
        try await call(CancelTrainingJob.self, GetTrainingJob.Input(jobID: id))
    }

    private func call<A: ActivityDeclaration>(_ activity: A.Type, _ input: A.Input) async throws -> A.Output {
        try await requireConsumer(of: configuration.names.queue(A.queue), command: "flow worker \(A.queue.workerName)")
        let reply = try await client.call(activity: A.name, on: A.queue, input: try JSONText(encoding: input), timeout: .seconds(20))
        if let error = reply.error { throw error }
        guard let output = reply.output else { throw ActivityFailure.nonRetryable(.unknown, "\(A.name) answered with no output") }
        return try output.decode(A.Output.self)
    }

    /// Nothing consumes the queue a request would go to, so it would only wait out its
    /// timeout: say so at once.
    struct NoConsumer: Error, CustomStringConvertible {
        var queue: String
        var command: String
        var description: String { "nothing consumes \(queue) now: start `\(command)`" }
    }

    private func requireConsumer(of queue: String, command: String) async throws {
        if try await transport.inspectQueue(queue).consumerCount == 0 {
            throw NoConsumer(queue: queue, command: command)
        }
    }

    // MARK: Queues, processes, costs

    func queues() async throws -> [ManagementAPI.QueueInfo] {
        let ours = Set(configuration.names.topology.queues.map(\.name))
        return try await management.queues().filter { ours.contains($0.name) }.sorted { $0.name < $1.name }
    }

    /// One process's health and metrics, or why they cannot be read.
    struct ProcessReport: Sendable {
        var endpoint: ConsoleConfiguration.Endpoint
        var healthy: Bool
        var health: String
        var metrics: PrometheusText?
        /// Activities finished and failed per second since the page last read this process.
        var rates: (finished: Double, failed: Double)?
    }

    let rateMemory = RateMemory()

    func processes() async -> [ProcessReport] {
        await withTaskGroup(of: (Int, ProcessReport).self) { group in
            for (index, endpoint) in configuration.endpoints.enumerated() {
                group.addTask { (index, await self.report(endpoint)) }
            }
            var reports: [(Int, ProcessReport)] = []
            for await report in group { reports.append(report) }
            return reports.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    private func report(_ endpoint: ConsoleConfiguration.Endpoint) async -> ProcessReport {
        do {
            let health = try await http.send(HTTPRequest(url: endpoint.url + "/healthz", connectTimeout: .seconds(1), totalTimeout: .seconds(3)))
            let metrics = (try? await http.send(HTTPRequest(url: endpoint.url + "/metrics", connectTimeout: .seconds(1), totalTimeout: .seconds(3))))
                .map { PrometheusText(String(decoding: $0.body, as: UTF8.self)) }
            var rates: (finished: Double, failed: Double)?
            if let metrics {
                let finished = metrics.sum(MetricNames.outcomes, matching: [MetricNames.outcome: "completed"]) + metrics.sum(MetricNames.outcomes, matching: [MetricNames.outcome: "dead_lettered"])
                let failed = metrics.sum(MetricNames.outcomes, matching: [MetricNames.outcome: "failed"]) + metrics.sum(MetricNames.outcomes, matching: [MetricNames.outcome: "retried"])
                rates = await rateMemory.rates(endpoint.url, finished: finished, failed: failed)
            }
            return ProcessReport(
                endpoint: endpoint, healthy: health.status == 200,
                health: String(decoding: health.body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
                metrics: metrics, rates: rates
            )
        } catch {
            return ProcessReport(endpoint: endpoint, healthy: false, health: "not reachable: \(error)", metrics: nil)
        }
    }
}

/// The last counts read from each process, so that two page views give rates: counters
/// only grow (a restart of the process starts them again, and gives no rate once).
actor RateMemory {
    private var last: [String: (at: ContinuousClock.Instant, finished: Double, failed: Double)] = [:]

    func rates(_ key: String, finished: Double, failed: Double) -> (finished: Double, failed: Double)? {
        let now = ContinuousClock.now
        defer { last[key] = (now, finished, failed) }
        guard let previous = last[key], finished >= previous.finished, failed >= previous.failed else { return nil }
        let seconds = Double((now - previous.at).components.seconds) + Double((now - previous.at).components.attoseconds) / 1e18
        guard seconds >= 0.5 else { return nil }
        return ((finished - previous.finished) / seconds, (failed - previous.failed) / seconds)
    }
}
