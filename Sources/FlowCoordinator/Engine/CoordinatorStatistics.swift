import FlowRuntime
import Synchronization

/// The coordinator's counters, for `/metrics` and tests.
public final class CoordinatorStatistics: ServiceHealth {
    public enum Event: String, Sendable, CaseIterable {
        case workflowStarted = "workflow_started"
        case workflowCompleted = "workflow_completed"
        case workflowFailed = "workflow_failed"
        case workflowCancelled = "workflow_cancelled"
        case workflowResumed = "workflow_resumed"
        case duplicateStart = "duplicate_start"
        case stepSent = "step_sent"
        case stepResent = "step_resent"
        case stepReplayed = "step_replayed_from_history"
        case stepCompleted = "step_completed"
        case stepFailed = "step_failed"
        case stepParked = "step_parked"
        case stepTimedOut = "step_timed_out"
        case duplicateReply = "duplicate_reply"
        case staleReply = "stale_reply"
        case rejectedMessage = "rejected_message"
        case scheduleFired = "schedule_fired"
        case queryAnswered = "query_answered"
    }

    private struct State {
        var counts: [Event: Int] = [:]
        var consuming = false
        var running = 0
    }

    private let state = Mutex(State())

    public init() {}

    func record(_ event: Event) { state.withLock { $0.counts[event, default: 0] += 1 } }
    func setConsuming(_ consuming: Bool) { state.withLock { $0.consuming = consuming } }
    func setRunning(_ running: Int) { state.withLock { $0.running = running } }

    public func count(_ event: Event) -> Int { state.withLock { $0.counts[event] ?? 0 } }
    /// Workflows running in memory now.
    public var running: Int { state.withLock { $0.running } }

    public var isReady: Bool { state.withLock { $0.consuming } }
    public var work: String { "consuming workflow commands and activity replies" }

    public func prometheusText(recoveries: Int) -> String {
        state.withLock { state in
            var lines = ["# HELP flow_coordinator_events_total Workflow and step events.", "# TYPE flow_coordinator_events_total counter"]
            for event in Event.allCases {
                lines.append(#"flow_coordinator_events_total{event="\#(event.rawValue)"} \#(state.counts[event] ?? 0)"#)
            }
            lines += [
                "# HELP flow_workflows_running Workflows running (or parked) in the coordinator now.",
                "# TYPE flow_workflows_running gauge",
                "flow_workflows_running \(state.running)",
                "# HELP flow_amqp_recoveries_total Times the broker connection was re-established.",
                "# TYPE flow_amqp_recoveries_total counter",
                "flow_amqp_recoveries_total \(recoveries)",
            ]
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
