import FlowTransport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// What a long-running service tells its health server: whether it does its work now,
/// and its counters.
public protocol ServiceHealth: Sendable {
    /// Whether the service does its work now (what `/readyz` reports).
    var isReady: Bool { get }
    /// The work, for `/readyz`: "consuming default-queue".
    var work: String { get }
    /// The counters in Prometheus' text format.
    func prometheusText(recoveries: Int) -> String
}

/// A worker's health: ready while it consumes its queue.
struct WorkerHealth: ServiceHealth {
    let statistics: WorkerStatistics
    let queueName: String
    /// Counters of the worker's activities' own (the OpenAI actor's tokens and cost).
    let extraMetrics: (@Sendable () -> String)?

    var isReady: Bool { statistics.isConsuming }
    var work: String { "consuming \(queueName)" }
    func prometheusText(recoveries: Int) -> String {
        statistics.prometheusText(queue: queueName, recoveries: recoveries) + (extraMetrics?() ?? "")
    }
}

/// Serves a service's `/healthz` (the process runs), `/readyz` (it does its work and is
/// connected to the broker) and Prometheus `/metrics`, on 127.0.0.1 by default so only the
/// host (or the container's own health check) sees them unless configured otherwise.
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

    /// A worker's health server; `extraMetrics` adds counters of its activities' own.
    public init(
        host: String, port: Int, movesWhenTaken: Bool = false, statistics: WorkerStatistics, queueName: String, transport: any MessageTransport, logger: Logger,
        extraMetrics: (@Sendable () -> String)? = nil
    ) {
        self.init(
            host: host, port: port, movesWhenTaken: movesWhenTaken,
            health: WorkerHealth(statistics: statistics, queueName: queueName, extraMetrics: extraMetrics), transport: transport, logger: logger
        )
    }

    public func run() async throws {
        let responder = HealthResponder(health: health, transport: transport)
        func bind(_ port: Int) async throws -> any Channel {
            try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(HealthHTTPHandler(responder: responder))
                    }
                }
                .bind(host: host, port: port)
                .get()
        }
        let channel: any Channel
        do {
            channel = try await bind(port)
        } catch let error where movesWhenTaken && port != 0 {
            do {
                channel = try await bind(0)
            } catch {
                throw HealthServerError(message: "cannot serve health and metrics on \(host) on any port (\(error))")
            }
            logger.notice("the default health and metrics port is taken (another copy on this host?): serving on a free port", metadata: [
                "http.address": "\(host):\(channel.localAddress?.port ?? 0)", "http.default_port": "\(port)", "error": "\(error)",
            ])
        } catch {
            throw HealthServerError(message: "cannot serve health and metrics on \(host):\(port) (\(error)): choose another port with --metrics-port or FLOW_METRICS_PORT (0 for any free port)")
        }
        logger.info("serving /healthz, /readyz and /metrics", metadata: ["http.address": "\(host):\(channel.localAddress?.port ?? port)"])
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

/// The health server could not start.
public struct HealthServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Builds the three responses from the service's live state.
struct HealthResponder: Sendable {
    let health: any ServiceHealth
    let transport: any MessageTransport

    func respond(to path: String) -> (HTTPResponseStatus, String, String) {
        switch path {
        case "/healthz":
            return (.ok, "text/plain", "ok\n")
        case "/readyz":
            if health.isReady, transport.isConnected {
                return (.ok, "text/plain", "ready: \(health.work)\n")
            }
            return (.serviceUnavailable, "text/plain", "not ready: not \(health.work) (starting, shutting down or reconnecting to the broker)\n")
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4", health.prometheusText(recoveries: transport.recoveryCount))
        default:
            return (.notFound, "text/plain", "not found: try /healthz, /readyz or /metrics\n")
        }
    }
}

final class HealthHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: HealthResponder
    private var path = "/"

    init(responder: HealthResponder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            path = String(request.uri.split(separator: "?", maxSplits: 1).first ?? "/")
        case .body:
            break
        case .end:
            let (status, contentType, body) = responder.respond(to: path)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in boundContext.value.close(promise: nil) }
        }
    }
}
