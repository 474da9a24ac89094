import FlowML
import FlowObservability
import Foundation
import Metrics
import ServiceContextModule
import Tracing

/// What the ML actor records while it trains: steps, their time and loss, jobs running and
/// checkpoints (into the process's metrics), and each checkpoint's write (as a span).
struct TrainingMetrics: Sendable {
    private let steps: MetricFamily<Counter>
    private let stepDuration: MetricFamily<Metrics.Timer>
    private let loss: MetricFamily<Gauge>
    private let checkpoints: MetricFamily<Counter>
    private let jobsRunning: Meter

    init(_ metrics: FlowMetrics) {
        steps = metrics.counter(FlowMetricCatalogue.trainingSteps)
        stepDuration = metrics.timer(FlowMetricCatalogue.trainingStepDuration)
        loss = metrics.gauge(FlowMetricCatalogue.trainingLoss)
        checkpoints = metrics.counter(FlowMetricCatalogue.trainingCheckpoints)
        jobsRunning = metrics.meter(FlowMetricCatalogue.trainingJobsRunning)()
        jobsRunning.set(0)
    }

    func jobStarted() { jobsRunning.increment() }
    func jobStopped() { jobsRunning.decrement() }

    func step(_ progress: TrainingProgress, model: String) {
        steps(model).increment()
        stepDuration(model).recordSeconds(progress.seconds)
        loss(model).record(Double(progress.loss))
    }

    /// Counts a written checkpoint and records its write as a span under `trace` (the
    /// training's), from when it began to when it was on disk.
    func checkpointWritten(_ write: CheckpointWrite, model: String, trace: ServiceContext) {
        checkpoints(model).increment()
        let span = startSpan("checkpoint", at: WallTime(write.began), context: trace, ofKind: .internal)
        span.attributes[FlowSpanAttribute.trainingSteps] = write.step
        span.attributes["flow.training.checkpoint"] = write.folder.lastPathComponent
        if let error = write.error {
            span.setStatus(SpanStatus(code: .error, message: error))
        }
        span.end(at: WallTime(write.ended))
    }
}
