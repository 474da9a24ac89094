/// One metric the system exports: its OpenTelemetry name and attributes, and from them the
/// Prometheus name the exposition uses.
///
/// The name is given as OpenTelemetry writes it (`messaging.process.duration`, unit `s`);
/// the Prometheus name follows OpenTelemetry's Prometheus compatibility rules: dots become
/// underscores, the unit becomes a suffix (`_seconds`, `_usd`), and counters end in
/// `_total`. So `messaging.process.duration` is scraped as
/// `messaging_process_duration_seconds`.
public struct MetricDefinition: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case counter, gauge, histogram
    }

    /// The unit, which names the Prometheus suffix.
    public enum Unit: String, Sendable, Hashable {
        case seconds, usd, none

        var prometheusSuffix: String {
            switch self {
            case .seconds: "_seconds"
            case .usd: "_usd"
            case .none: ""
            }
        }
    }

    /// Histogram bucket bounds, in the metric's unit.
    public enum Buckets: Sendable, Hashable {
        case durations([Duration])
        case values([Double])
    }

    /// The OpenTelemetry name: `messaging.process.duration`, `flow.activity.outcomes`.
    public let name: String
    public let kind: Kind
    public let unit: Unit
    /// The attributes, by OpenTelemetry name (`messaging.destination.name`), in the order
    /// the code passes their values.
    public let attributes: [String]
    /// What it measures, for docs/observability.md and the dashboards.
    public let help: String
    public let buckets: Buckets?
    /// What the metric was called before it moved to swift-metrics, when it existed then.
    public let replaces: String?

    public init(_ name: String, _ kind: Kind, unit: Unit = .none, attributes: [String] = [], help: String, buckets: Buckets? = nil, replaces: String? = nil) {
        self.name = name
        self.kind = kind
        self.unit = unit
        self.attributes = attributes
        self.help = help
        self.buckets = buckets
        self.replaces = replaces
    }

    /// The name Prometheus scrapes.
    public var prometheusName: String {
        Self.prometheusIdentifier(name) + unit.prometheusSuffix + (kind == .counter ? "_total" : "")
    }

    /// The label names Prometheus scrapes, in attribute order.
    public var prometheusLabels: [String] { attributes.map(Self.prometheusIdentifier) }

    /// The series names a scrape shows for this metric: a histogram's `_bucket`, `_sum` and
    /// `_count`, or the name itself.
    public var prometheusSeriesNames: [String] {
        kind == .histogram ? ["_bucket", "_sum", "_count"].map { prometheusName + $0 } : [prometheusName]
    }

    /// The Prometheus label of an attribute: `gen_ai.request.model` is `gen_ai_request_model`.
    public static func prometheusLabel(_ attribute: String) -> String { prometheusIdentifier(attribute) }

    /// An OpenTelemetry name as a Prometheus identifier: every character outside
    /// `[a-zA-Z0-9_]` becomes an underscore.
    static func prometheusIdentifier(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") ? $0 : "_" })
    }
}
