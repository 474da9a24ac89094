import FlowCore
import FlowObservability
import FlowRuntime
import Foundation
import Metrics
import Synchronization

/// The coordinator's counters: counted for the tests and logs, and recorded into the
/// process's ``FlowMetrics`` for `/metrics`.
public final class CoordinatorStatistics: ServiceHealth {
    public enum Event: String, Sendable, CaseIterable {
        case workflowStarted = "workflow_started"
        case workflowCompleted = "workflow_completed"
        case workflowFailed = "workflow_failed"
        case workflowCancelled = "workflow_cancelled"
        case workflowContinuedAsNew = "workflow_continued_as_new"
        case workflowReset = "workflow_reset"
        case workflowResumed = "workflow_resumed"
        case duplicateStart = "duplicate_start"
        case stepSent = "step_sent"
        case stepResent = "step_resent"
        case stepReplayed = "step_replayed_from_history"
        case stepCompleted = "step_completed"
        case stepFailed = "step_failed"
        case stepParked = "step_parked"
        case stepTimedOut = "step_timed_out"
        case activityCancelRequested = "activity_cancel_requested"
        case duplicateReply = "duplicate_reply"
        case staleReply = "stale_reply"
        case rejectedMessage = "rejected_message"
        case scheduleFired = "schedule_fired"
        case scheduleSkipped = "schedule_skipped"
        case queryAnswered = "query_answered"
        case signalReceived = "signal_received"
        case duplicateSignal = "duplicate_signal"
        case updateApplied = "update_applied"
        case updateRejected = "update_rejected"
        case duplicateUpdate = "duplicate_update"
    }

    private struct State {
        var counts: [Event: Int] = [:]
        var consuming = false
        var running = 0
    }

    private let state = Mutex(State())
    public let metrics: FlowMetrics
    private let events: MetricFamily<Counter>
    private let starts: MetricFamily<Counter>
    private let ends: MetricFamily<Counter>
    private let workflowDuration: MetricFamily<Metrics.Timer>
    private let stepsPerWorkflow: MetricFamily<Recorder>
    private let stepDuration: MetricFamily<Metrics.Timer>
    private let queueLag: MetricFamily<Metrics.Timer>
    private let runningGauge: Gauge
    private let parkedGauge: Gauge
    private let oldestParkedGauge: Gauge

    public init(metrics: FlowMetrics = FlowMetrics(), workflows: [String] = []) {
        self.metrics = metrics
        events = metrics.counter(FlowMetricCatalogue.coordinatorEvents)
        starts = metrics.counter(FlowMetricCatalogue.workflowStarts)
        ends = metrics.counter(FlowMetricCatalogue.workflowEnds)
        workflowDuration = metrics.timer(FlowMetricCatalogue.workflowDuration)
        stepsPerWorkflow = metrics.recorder(FlowMetricCatalogue.workflowSteps)
        stepDuration = metrics.timer(FlowMetricCatalogue.stepDuration)
        queueLag = metrics.timer(FlowMetricCatalogue.coordinatorQueueLag)
        runningGauge = metrics.gauge(FlowMetricCatalogue.workflowsRunning)()
        parkedGauge = metrics.gauge(FlowMetricCatalogue.workflowsParked)()
        oldestParkedGauge = metrics.gauge(FlowMetricCatalogue.oldestParkedAt)()
        // Every series starts at zero, so that rate() and increase() see the first event.
        for event in Event.allCases { events(event.rawValue).increment(by: 0) }
        for workflow in workflows {
            starts(workflow).increment(by: 0)
            for status in [WorkflowStatus.completed, .failed, .cancelled] { ends(workflow, status.rawValue).increment(by: 0) }
        }
        runningGauge.record(0)
        parkedGauge.record(0)
        oldestParkedGauge.record(0)
    }

    func record(_ event: Event) {
        state.withLock { $0.counts[event, default: 0] += 1 }
        events(event.rawValue).increment()
    }

    func workflowStarted(name: String) {
        record(.workflowStarted)
        starts(name).increment()
    }

    func workflowEnded(name: String, status: WorkflowStatus, after duration: TimeInterval, steps: Int) {
        switch status {
        case .completed: record(.workflowCompleted)
        case .cancelled: record(.workflowCancelled)
        case .continuedAsNew: record(.workflowContinuedAsNew)
        case .reset: record(.workflowReset)
        case .failed, .running, .parked: record(.workflowFailed)
        }
        ends(name, status.rawValue).increment()
        workflowDuration(name, status.rawValue).recordSeconds(max(duration, 0))
        stepsPerWorkflow(name).record(steps)
    }

    /// A step's final reply, `duration` after its request was first sent.
    func stepEnded(activity: String, outcome: String, after duration: TimeInterval) {
        stepDuration(activity, outcome).recordSeconds(max(duration, 0))
    }

    /// How long a message waited in `queue` before the coordinator took it.
    func queueLag(_ queue: String, seconds: TimeInterval) {
        queueLag(queue).recordSeconds(max(seconds, 0))
    }

    func setParked(_ count: Int, oldestSince: Date?) {
        parkedGauge.record(count)
        oldestParkedGauge.record(oldestSince?.timeIntervalSince1970 ?? 0)
    }

    func setConsuming(_ consuming: Bool) { state.withLock { $0.consuming = consuming } }

    func setRunning(_ running: Int) {
        state.withLock { $0.running = running }
        runningGauge.record(running)
    }

    public func count(_ event: Event) -> Int { state.withLock { $0.counts[event] ?? 0 } }
    /// Workflows running in memory now.
    public var running: Int { state.withLock { $0.running } }

    public var isReady: Bool { state.withLock { $0.consuming } }
    public var work: String { "consuming workflow commands and activity replies" }
}
