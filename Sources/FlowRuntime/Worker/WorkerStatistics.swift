import Synchronization

/// Counts of what a worker did, per activity, for logs, `flow status` and health.
public final class WorkerStatistics: Sendable {
    public enum Event: String, Sendable, CaseIterable {
        case started, completed, failed, retried, deadLettered, duplicate, deferred, cancelled

        var metricLabel: String { self == .deadLettered ? "dead_lettered" : rawValue }
    }

    private struct State {
        var counts: [String: [Event: Int]] = [:]
        var inFlight = 0
        var durations: [String: (sum: Double, count: Int)] = [:]
        var consuming = false
    }

    private let state = Mutex(State())

    public init() {}

    func record(_ event: Event, activity: String, duration: Duration? = nil) {
        state.withLock { state in
            state.counts[activity, default: [:]][event, default: 0] += 1
            if let duration {
                let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
                let previous = state.durations[activity] ?? (0, 0)
                state.durations[activity] = (previous.sum + seconds, previous.count + 1)
            }
        }
    }

    func begin() { state.withLock { $0.inFlight += 1 } }
    func end() { state.withLock { $0.inFlight -= 1 } }

    /// Whether the worker's consumer is running (what `/readyz` reports).
    public var isConsuming: Bool { state.withLock { $0.consuming } }

    func setConsuming(_ consuming: Bool) { state.withLock { $0.consuming = consuming } }

    /// The counters in Prometheus' text format, labelled with the queue and activity.
    public func prometheusText(queue: String, recoveries: Int) -> String {
        state.withLock { state in
            var lines = [
                "# HELP flow_activities_total Activity deliveries by outcome.",
                "# TYPE flow_activities_total counter",
            ]
            for activity in state.counts.keys.sorted() {
                for event in Event.allCases {
                    let value = state.counts[activity]?[event] ?? 0
                    lines.append(#"flow_activities_total{messaging_destination_name="\#(queue)",activity="\#(activity)",outcome="\#(event.metricLabel)"} \#(value)"#)
                }
            }
            lines += [
                "# HELP flow_activity_duration_seconds Time from start to completion of successful activities.",
                "# TYPE flow_activity_duration_seconds summary",
            ]
            for activity in state.durations.keys.sorted() {
                let (sum, count) = state.durations[activity]!
                lines.append(#"flow_activity_duration_seconds_sum{messaging_destination_name="\#(queue)",activity="\#(activity)"} \#(sum)"#)
                lines.append(#"flow_activity_duration_seconds_count{messaging_destination_name="\#(queue)",activity="\#(activity)"} \#(count)"#)
            }
            lines += [
                "# HELP flow_activities_in_flight Activities running now.",
                "# TYPE flow_activities_in_flight gauge",
                #"flow_activities_in_flight{messaging_destination_name="\#(queue)"} \#(state.inFlight)"#,
                "# HELP flow_amqp_recoveries_total Times the broker connection was re-established.",
                "# TYPE flow_amqp_recoveries_total counter",
                "flow_amqp_recoveries_total \(recoveries)",
            ]
            return lines.joined(separator: "\n") + "\n"
        }
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
