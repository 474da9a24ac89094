import FlowObservability
import FlowTransport
import Hummingbird
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// What a long-running service tells its health server: whether it does its work now,
/// and where its metrics are.
public protocol ServiceHealth: Sendable {
    /// Whether the service does its work now (what `/readyz` reports).
    var isReady: Bool { get }
    /// The work, for `/readyz`: "consuming default-queue".
    var work: String { get }
    /// The registry `/metrics` exposes.
    var metrics: FlowMetrics { get }
    /// Brings what is read rather than counted up to date, just before a scrape.
    func prepareScrape(connected: Bool) async
}

extension ServiceHealth {
    public func prepareScrape(connected: Bool) async {}
}

/// A worker's health: ready while it consumes its queue.
struct WorkerHealth: ServiceHealth {
    let statistics: WorkerStatistics
    let queueName: String
    let metrics: FlowMetrics
    let prepareActivities: (@Sendable () async -> Void)?

    var isReady: Bool { statistics.isConsuming }
    var work: String { "consuming \(queueName)" }
    func prepareScrape(connected: Bool) async {
        statistics.reportConsuming(connected: connected)
        await prepareActivities?()
    }
}

/// Serves a service's `/healthz` (the process runs), `/readyz` (it does its work and is
/// connected to the broker) and Prometheus `/metrics`, on 127.0.0.1 by default so only the
/// host (or the container's own health check) sees them unless configured otherwise.
///
/// On Hummingbird, the one HTTP server library of the project (the console's too).
public struct HealthServer: Service {
    public let host: String
    /// The port to serve on; 0 for any free one.
    public let port: Int
    /// Whether a taken `port` moves to any free port instead of failing: true for a
    /// default port, so that a second copy of a service on one host starts as typed;
    /// false for a port the user chose.
    public let movesWhenTaken: Bool
    let health: any ServiceHealth
    let transport: any MessageTransport
    let logger: Logger

    public init(host: String, port: Int, movesWhenTaken: Bool = false, health: any ServiceHealth, transport: any MessageTransport, logger: Logger) {
        self.host = host
        self.port = port
        self.movesWhenTaken = movesWhenTaken
        self.health = health
        self.transport = transport
        self.logger = logger
    }

    /// A worker's health server, exposing `metrics`: the worker's and its activities'
    /// (`prepareScrape` brings theirs up to date).
    public init(
        host: String, port: Int, movesWhenTaken: Bool = false, statistics: WorkerStatistics, queueName: String, metrics: FlowMetrics,
        prepareScrape: (@Sendable () async -> Void)? = nil, transport: any MessageTransport, logger: Logger
    ) {
        self.init(
            host: host, port: port, movesWhenTaken: movesWhenTaken,
            health: WorkerHealth(statistics: statistics, queueName: queueName, metrics: metrics, prepareActivities: prepareScrape), transport: transport, logger: logger
        )
    }

    public func run() async throws {
        let responder = HealthResponder(health: health, transport: transport)
        do {
            try await serve(responder, on: port)
        } catch let error as HealthServerError where movesWhenTaken && port != 0 && error.couldNotBind {
            logger.notice("the default health and metrics port is taken (another copy on this host?): serving on a free port", metadata: [
                "http.default_port": "\(port)", "error": "\(error.cause)",
            ])
            try await serve(responder, on: 0)
        }
    }

    private func serve(_ responder: HealthResponder, on port: Int) async throws {
        let router = Router()
        router.get("healthz") { _, _ in await responder.respond(to: "/healthz") }
        router.get("readyz") { _, _ in await responder.respond(to: "/readyz") }
        router.get("metrics") { _, _ in await responder.respond(to: "/metrics") }
        router.get("**") { _, _ in await responder.respond(to: "") }
        let started = Atomic(false)
        let host = host
        let logger = logger
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "flow"),
            onServerRunning: { channel in
                started.store(true, ordering: .relaxed)
                logger.info("serving /healthz, /readyz and /metrics", metadata: ["http.address": "\(host):\(channel.localAddress?.port ?? port)"])
            },
            logger: Self.quiet(logger)
        )
        do {
            try await application.run()
        } catch {
            if started.load(ordering: .relaxed) { throw error }
            throw HealthServerError(
                message: "cannot serve health and metrics on \(host):\(port) (\(error)): choose another port with --metrics-port or FLOW_METRICS_PORT (0 for any free port)",
                couldNotBind: true, cause: "\(error)"
            )
        }
    }

    /// Hummingbird's own lines (one per start and stop) at debug: the line above says it.
    private static func quiet(_ logger: Logger) -> Logger {
        var logger = logger
        logger.logLevel = max(logger.logLevel, .notice)
        return logger
    }
}

/// The health server could not start.
public struct HealthServerError: Error, CustomStringConvertible {
    public var message: String
    /// Whether it failed before it listened (a taken port, an address not of this host).
    var couldNotBind = false
    /// The server library's own error.
    var cause = ""
    public var description: String { message }

    public init(message: String) { self.message = message }

    init(message: String, couldNotBind: Bool, cause: String) {
        self.message = message
        self.couldNotBind = couldNotBind
        self.cause = cause
    }
}

/// Builds the three responses from the service's live state.
final class HealthResponder: Sendable {
    let health: any ServiceHealth
    let transport: any MessageTransport
    /// `flow.amqp.recoveries`, brought up to the transport's count at each scrape.
    private let recoveries: Counter
    private let recoveriesCounted = Mutex(0)

    init(health: any ServiceHealth, transport: any MessageTransport) {
        self.health = health
        self.transport = transport
        recoveries = health.metrics.counter(FlowMetricCatalogue.amqpRecoveries)()
        recoveries.increment(by: 0)
    }

    func respond(to path: String) async -> Response {
        switch path {
        case "/healthz":
            return Self.text(.ok, "ok\n")
        case "/readyz":
            if health.isReady, transport.isConnected {
                return Self.text(.ok, "ready: \(health.work)\n")
            }
            return Self.text(.serviceUnavailable, "not ready: not \(health.work) (starting, shutting down or reconnecting to the broker)\n")
        case "/metrics":
            let recovered = transport.recoveryCount
            let newRecoveries = recoveriesCounted.withLock { counted in
                defer { counted = max(counted, recovered) }
                return recovered - counted
            }
            if newRecoveries > 0 { recoveries.increment(by: newRecoveries) }
            await health.prepareScrape(connected: transport.isConnected)
            var bytes: [UInt8] = []
            health.metrics.registry.emit(into: &bytes)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
            )
        default:
            return Self.text(.notFound, "not found: try /healthz, /readyz or /metrics\n")
        }
    }

    private static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
