import FlowObservability
import Metrics
import Synchronization

/// What a worker did, per activity: counted for logs, `flow status` and the tests, and
/// recorded into the process's ``FlowMetrics`` for `/metrics`.
public final class WorkerStatistics: Sendable {
    public enum Event: String, Sendable, CaseIterable {
        case started, completed, failed, retried, deadLettered, duplicate, deferred, cancelled

        /// The `flow.outcome` attribute's value.
        var outcome: String { self == .deadLettered ? "dead_lettered" : rawValue }
    }

    private struct State {
        var counts: [String: [Event: Int]] = [:]
        var inFlight = 0
        var consuming = false
        var cancelRequests = 0
    }

    private let state = Mutex(State())
    /// The queue, the `messaging.destination.name` of every instrument.
    private let queue: String
    /// The activities this worker runs: any other name, which comes from outside, is
    /// recorded as `unknown` so that a stream of made-up names cannot grow the metrics.
    private let activities: Set<String>
    private let outcomes: MetricFamily<Counter>
    private let processDuration: MetricFamily<Metrics.Timer>
    private let retries: MetricFamily<Counter>
    private let deadLetters: MetricFamily<Counter>
    private let inFlightMeter: Meter
    private let consumingGauge: Gauge

    /// The label an activity not run here is recorded under.
    public static let unknownActivity = "unknown"

    public init(metrics: FlowMetrics, queue: String, activities: [String]) {
        self.queue = queue
        self.activities = Set(activities)
        outcomes = metrics.counter(FlowMetricCatalogue.activityOutcomes)
        processDuration = metrics.timer(FlowMetricCatalogue.processDuration)
        retries = metrics.counter(FlowMetricCatalogue.activityRetries)
        deadLetters = metrics.counter(FlowMetricCatalogue.deadLetters)
        inFlightMeter = metrics.meter(FlowMetricCatalogue.activitiesInFlight)(queue)
        consumingGauge = metrics.gauge(FlowMetricCatalogue.workerConsuming)(queue)
        // Every series starts at zero, so that rate() and increase() see the first event.
        for activity in activities {
            for event in Event.allCases { outcomes(queue, activity, event.outcome).increment(by: 0) }
        }
        inFlightMeter.set(0)
        consumingGauge.record(0)
    }

    private func label(_ activity: String) -> String { activities.contains(activity) ? activity : Self.unknownActivity }

    /// Counts `event`; `duration` is the activity's run time, for the outcomes that end
    /// one, and `errorType` the failure's type, for a retry or a dead letter.
    func record(_ event: Event, activity: String, duration: Duration? = nil, errorType: String? = nil) {
        state.withLock { $0.counts[activity, default: [:]][event, default: 0] += 1 }
        let activity = label(activity)
        outcomes(queue, activity, event.outcome).increment()
        if let duration { processDuration(queue, activity, event.outcome).record(duration) }
        switch event {
        case .retried: retries(queue, activity, errorType ?? "unknown").increment()
        case .deadLettered: deadLetters(queue, activity, errorType ?? "unknown").increment()
        default: break
        }
    }

    /// How many cancel requests (``ActivityCancel``) this worker has received.
    public var cancelRequests: Int { state.withLock { $0.cancelRequests } }

    func cancelRequested() {
        state.withLock { $0.cancelRequests += 1 }
    }

    func begin() {
        state.withLock { $0.inFlight += 1 }
        inFlightMeter.increment()
    }

    func end() {
        state.withLock { $0.inFlight -= 1 }
        inFlightMeter.decrement()
    }

    /// Whether the worker's consumer is running (what `/readyz` reports).
    public var isConsuming: Bool { state.withLock { $0.consuming } }

    func setConsuming(_ consuming: Bool) {
        state.withLock { $0.consuming = consuming }
        consumingGauge.record(consuming ? 1 : 0)
    }

    /// Sets `flow.worker.consuming` to whether the worker consumes and is connected.
    func reportConsuming(connected: Bool) {
        consumingGauge.record(isConsuming && connected ? 1 : 0)
    }

    /// Activities running now.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// How many times `event` happened, for one activity or all.
    public func count(_ event: Event, activity: String? = nil) -> Int {
        state.withLock { state in
            if let activity { return state.counts[activity]?[event] ?? 0 }
            return state.counts.values.reduce(0) { $0 + ($1[event] ?? 0) }
        }
    }
}
