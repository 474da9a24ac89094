import CoreMetrics
import Metrics
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory
import Synchronization

/// One process's metrics: a Prometheus registry, the swift-metrics factory that records
/// into it, and the instruments of ``FlowMetricCatalogue`` made from that factory.
///
/// Each service takes one, so the tests can run several workers in one process and read
/// each one's `/metrics` alone; `flow` also bootstraps the global `MetricsSystem` with the
/// same factory, so the libraries' own metrics (Hummingbird's) appear beside ours.
public struct FlowMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        let catalogue = Dictionary(uniqueKeysWithValues: FlowMetricCatalogue.all.map { ($0.name, $0) })
        factory.nameAndLabelSanitizer = { name, labels in
            let prometheusName = catalogue[name]?.prometheusName ?? MetricDefinition.prometheusIdentifier(name)
            return (prometheusName, labels.map { (MetricDefinition.prometheusIdentifier($0.0), $0.1) })
        }
        for definition in FlowMetricCatalogue.all {
            switch definition.buckets {
            case .durations(let bounds): factory.durationHistogramBuckets[definition.prometheusName] = bounds
            case .values(let bounds): factory.valueHistogramBuckets[definition.prometheusName] = bounds
            case nil: break
            }
        }
        self.factory = factory
    }

    /// The Prometheus text exposition of everything recorded so far.
    public func exposition() -> String { registry.emitToString() }

    public func counter(_ definition: MetricDefinition) -> MetricFamily<Counter> {
        precondition(definition.kind == .counter, "\(definition.name) is a \(definition.kind)")
        return MetricFamily(definition) { [factory] in Counter(label: definition.name, dimensions: $0, factory: factory) }
    }

    public func floatingPointCounter(_ definition: MetricDefinition) -> MetricFamily<FloatingPointCounter> {
        precondition(definition.kind == .counter, "\(definition.name) is a \(definition.kind)")
        return MetricFamily(definition) { [factory] in FloatingPointCounter(label: definition.name, dimensions: $0, factory: factory) }
    }

    public func gauge(_ definition: MetricDefinition) -> MetricFamily<Gauge> {
        precondition(definition.kind == .gauge, "\(definition.name) is a \(definition.kind)")
        return MetricFamily(definition) { [factory] in Gauge(label: definition.name, dimensions: $0, factory: factory) }
    }

    /// A gauge that goes up and down by steps (activities in flight).
    public func meter(_ definition: MetricDefinition) -> MetricFamily<Meter> {
        precondition(definition.kind == .gauge, "\(definition.name) is a \(definition.kind)")
        return MetricFamily(definition) { [factory] in Meter(label: definition.name, dimensions: $0, factory: factory) }
    }

    /// A histogram of durations, in seconds.
    public func timer(_ definition: MetricDefinition) -> MetricFamily<Metrics.Timer> {
        precondition(definition.kind == .histogram && definition.unit == .seconds, "\(definition.name) is not a histogram of seconds")
        return MetricFamily(definition) { [factory] in Metrics.Timer(label: definition.name, dimensions: $0, factory: factory) }
    }

    /// A histogram of values other than durations (tokens, steps).
    public func recorder(_ definition: MetricDefinition) -> MetricFamily<Recorder> {
        precondition(definition.kind == .histogram && definition.unit != .seconds, "\(definition.name) is not a histogram of values")
        return MetricFamily(definition) { [factory] in Recorder(label: definition.name, dimensions: $0, aggregate: true, factory: factory) }
    }
}

/// The instruments of one metric, one per set of attribute values, each made once and
/// reused.
public final class MetricFamily<Instrument: Sendable>: Sendable {
    public let definition: MetricDefinition
    private let make: @Sendable ([(String, String)]) -> Instrument
    private let instruments = Mutex<[[String]: Instrument]>([:])

    init(_ definition: MetricDefinition, make: @escaping @Sendable ([(String, String)]) -> Instrument) {
        self.definition = definition
        self.make = make
    }

    /// The instrument for these attribute values, given in the definition's order.
    public func callAsFunction(_ values: String...) -> Instrument { instrument(values) }

    public func instrument(_ values: [String]) -> Instrument {
        precondition(values.count == definition.attributes.count, "\(definition.name) takes \(definition.attributes.count) attribute values, got \(values.count)")
        return instruments.withLock { instruments in
            if let instrument = instruments[values] { return instrument }
            let instrument = make(Array(zip(definition.attributes, values)))
            instruments[values] = instrument
            return instrument
        }
    }
}

extension Metrics.Timer {
    /// Records a duration measured on a Swift clock.
    public func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
