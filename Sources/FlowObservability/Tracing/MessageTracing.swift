import FlowCore
import Instrumentation
import ServiceContextModule
import Tracing

/// W3C trace context (`traceparent`, `tracestate`) carried in AMQP headers, the way every
/// OpenTelemetry messaging instrumentation carries it, so a trace runs from whoever sent a
/// message (the coordinator, `flow`, a pika client) through the worker that handles it.
///
/// The propagation format is the bootstrapped instrument's (swift-otel's W3C propagator);
/// with no tracer bootstrapped these do nothing.
public enum MessageTracing {
    /// The context a message's headers carry, for the span that handles it to continue.
    public static func context(of headers: FieldTable?) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let headers {
            InstrumentationSystem.instrument.extract(headers, into: &context, using: FieldTableExtractor())
        }
        return context
    }

    /// Adds `context`'s trace headers to a message's headers.
    public static func inject(_ context: ServiceContext, into headers: inout FieldTable) {
        InstrumentationSystem.instrument.inject(context, into: &headers, using: FieldTableInjector())
    }

    /// For a copy of a message that goes on (a retry, a hand-back, a dead letter): a message
    /// that came with a trace keeps its sender's span as the parent of every attempt; one
    /// that came without gets the current span's, so its later attempts and a replay join
    /// the trace its first attempt began.
    public static func continueTrace(in headers: inout FieldTable) {
        guard headers[FlowProtocol.Header.traceParent] == nil, let current = ServiceContext.current else { return }
        inject(current, into: &headers)
    }

    /// Adds `context`'s trace headers to an HTTP request's headers.
    public static func inject(_ context: ServiceContext, into headers: inout [(String, String)]) {
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HTTPHeaderInjector())
    }

    /// `context`'s trace headers as text, to be kept with a workflow so that its steps join
    /// the same trace after a restart; empty when there is no trace.
    public static func storedForm(of context: ServiceContext) -> [String: String] {
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: DictionaryInjector())
        return headers
    }

    /// The context kept by ``storedForm(of:)``.
    public static func context(storedForm: [String: String]) -> ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(storedForm, into: &context, using: DictionaryExtractor())
        return context
    }
}

struct FieldTableInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout FieldTable) { carrier[key] = .string(value) }
}

struct FieldTableExtractor: Extractor {
    func extract(key: String, from carrier: FieldTable) -> String? { carrier[key]?.stringValue }
}

struct HTTPHeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [(String, String)]) {
        carrier.removeAll { $0.0.lowercased() == key.lowercased() }
        carrier.append((key, value))
    }
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
