import FlowObservability
import Foundation
import Logging
import Metrics
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// The process's observability, set up once by each command that runs a service
/// (docs/observability.md):
/// - one metrics registry, which `/metrics` serves and which the global `MetricsSystem`
///   records into too, so the libraries' own metrics join ours;
/// - logs on standard error, as text or as JSON lines (`FLOW_LOG_FORMAT=json`), with the
///   current span's `trace_id` and `span_id`;
/// - traces exported over OTLP by swift-otel, only when an endpoint is configured.
enum FlowObservation {
    /// The registry every service of this process records into.
    static let metrics: FlowMetrics = {
        let metrics = FlowMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        return metrics
    }()

    /// Bootstraps logging at `level`, in the format `FLOW_LOG_FORMAT` names. The first
    /// call of the process decides: swift-log stops a process that bootstraps twice, and a
    /// command may open more than one connection (`flow workflow cancel --where` reads the
    /// list, then sends the cancels).
    static func bootstrapLogging(level: Logger.Level, environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard loggingBootstrapped.withLock({ done in defer { done = true }; return !done }) else { return }
        let provider = OTel.makeLoggingMetadataProvider()
        let json = environment["FLOW_LOG_FORMAT"]?.lowercased() == "json"
        LoggingSystem.bootstrap({ label, provider in
            if json {
                var handler = JSONLogHandler(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
            handler.logLevel = level
            return handler
        }, metadataProvider: provider)
    }

    private static let loggingBootstrapped = Mutex(false)

    /// Bootstraps tracing when `OTEL_EXPORTER_OTLP_ENDPOINT` (or its traces-only form) is
    /// set, and returns the exporter's service, to run first in the service group so it
    /// stops last and sends the last spans. With no endpoint, nothing is bootstrapped: the
    /// spans in the code are the no-op tracer's and cost nothing measurable.
    static func tracingService(defaultServiceName: String, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (any Service)? {
        let endpoint = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
        guard let endpoint, !endpoint.isEmpty,
            environment["OTEL_SDK_DISABLED"]?.lowercased() != "true", environment["OTEL_TRACES_EXPORTER"]?.lowercased() != "none"
        else { return nil }
        // swift-otel stops the process on a protocol it was built without: refuse it here,
        // with what to do instead.
        for variable in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            guard let value = environment[variable], !value.isEmpty else { continue }
            guard ["http/protobuf", "http/json"].contains(value) else {
                throw FlowObservationError(
                    message: "\(variable)=\(value) is not a protocol flow exports traces with: use http/protobuf (the default, the collector's port 4318) or http/json; gRPC is not built in (docs/observability.md)"
                )
            }
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = defaultServiceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.diagnosticLogLevel = .warning
        // A collector that is down must not hold a stopping worker for long: its spans are
        // dropped with a warning after this (OTEL_BSP_EXPORT_TIMEOUT and OTEL_EXPORTER_OTLP_TIMEOUT override it).
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(5)
        configuration.traces.otlpExporter.timeout = .seconds(5)
        let backend: (factory: any Tracer, service: any Service)
        do {
            let made = try OTel.makeTracingBackend(configuration: configuration)
            backend = (made.factory, made.service)
        } catch {
            throw FlowObservationError(message: "cannot export traces to \(endpoint) (\(error)): check the OTEL_EXPORTER_OTLP_* settings in docs/observability.md")
        }
        InstrumentationSystem.bootstrap(backend.factory)
        logger.info("exporting traces over OTLP", metadata: ["otel.endpoint": "\(endpoint)", "otel.service_name": "\(environment["OTEL_SERVICE_NAME"] ?? defaultServiceName)"])
        return backend.service
    }
}

struct FlowObservationError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
