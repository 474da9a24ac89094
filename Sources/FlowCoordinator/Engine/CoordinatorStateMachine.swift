import FlowCore
import Foundation

/// What one coordinator knows about the workflows running in its process and the steps
/// they wait on, and what it must do next. A value with no I/O and no clock: every event
/// brings its time, and every answer is an action the shell carries out (send, resume a
/// waiting workflow, time a step out, launch again). The store holds what must survive a
/// crash; this holds what a crash may forget.
struct CoordinatorStateMachine {
    /// A step a running workflow waits on and has no outcome for yet.
    struct AwaitedStep: Sendable, Equatable {
        var workflowID: String
        var call: ActivityCall
        /// When the request was last sent and confirmed; nil before that and while parked
        /// (a parked step waits for an operator, not for a deadline).
        var sentAt: Date?
        var lastHeardAt: Date?
        var sends: Int
    }

    /// What supervision found overdue.
    enum SupervisionAction: Equatable {
        case resend(messageID: String, step: AwaitedStep, reason: String)
        case timeOut(messageID: String, workflowID: String, failure: ActivityFailure)
    }

    /// How a workflow's run ended, as the shell saw it.
    typealias RunEnd = WorkflowRunEnd

    /// What to record for a run that ended, or that it must run again.
    enum Ending: Equatable {
        case finished(WorkflowStatus, output: JSONText?, error: ActivityFailure?)
        /// It stopped where it stood (a shutdown): its history is intact, it resumes on the next start.
        case suspended
        /// The coordinator could not record or send a step: launched again at `at`.
        case relaunch(at: Date)
        /// The code does not replay its journal: the workflow parks, and runs again when a
        /// coordinator with code that replays starts.
        case diverged(WorkflowNondeterminism)
        /// The code continued as new: this run ends and the next starts with `input`.
        case continued(input: JSONText)
        /// An operator's reset stopped the run; the reset records what comes next.
        case superseded
    }

    let replyGrace: Duration
    let relaunchBackoff: Backoff

    private(set) var running: Set<String> = []
    private(set) var isShuttingDown = false
    private var cancelling: Set<String> = []
    private var superseding: Set<String> = []
    private var steps: [String: AwaitedStep] = [:]
    private var relaunches: [String: (at: Date, failures: Int)] = [:]
    private var handlingFailures = 0
    let handlingBackoff = Backoff(initial: .milliseconds(200), maximum: .seconds(10))

    init(replyGrace: Duration, relaunchBackoff: Backoff = Backoff(initial: .seconds(1), maximum: .seconds(60))) {
        self.replyGrace = replyGrace
        self.relaunchBackoff = relaunchBackoff
    }

    // MARK: Workflows

    /// Whether a workflow may start running here: not while shutting down, not twice.
    mutating func launch(_ workflowID: String) -> Bool {
        guard !isShuttingDown, !running.contains(workflowID) else { return false }
        running.insert(workflowID)
        return true
    }

    /// A cancel request for a workflow: true when it runs here, so its task must be cancelled.
    mutating func requestCancel(_ workflowID: String) -> Bool {
        guard running.contains(workflowID) else { return false }
        cancelling.insert(workflowID)
        return true
    }

    /// A reset of a workflow: true when it runs here, so its run must be stopped first and
    /// ends ``Ending/superseded``, whatever its code was doing.
    mutating func supersede(_ workflowID: String) -> Bool {
        guard running.contains(workflowID) else { return false }
        superseding.insert(workflowID)
        return true
    }

    /// The run of a workflow ended: what to record. Forgets its steps and early outcomes.
    mutating func ended(_ workflowID: String, _ end: RunEnd, at now: Date, random: Double) -> Ending {
        running.remove(workflowID)
        for (messageID, step) in steps where step.workflowID == workflowID { steps[messageID] = nil }
        if superseding.remove(workflowID) != nil {
            cancelling.remove(workflowID)
            return .superseded
        }
        if cancelling.remove(workflowID) != nil {
            return .finished(.cancelled, output: nil, error: .nonRetryable(.cancelled, "the workflow was cancelled"))
        }
        if isShuttingDown { return .suspended }
        let ending = Self.classify(end)
        if case .relaunch = ending {
            return .relaunch(at: relaunchLater(workflowID, at: now, random: random))
        }
        relaunches[workflowID] = nil
        return ending
    }

    /// A workflow whose run ended could not have that end recorded: it is launched again
    /// after the growing wait, and its replay reaches the same end. Returns when.
    mutating func relaunchLater(_ workflowID: String, at now: Date, random: Double) -> Date {
        let failures = (relaunches[workflowID]?.failures ?? 0) + 1
        let at = now.addingTimeInterval(relaunchBackoff.delay(afterFailures: failures, random: random).seconds)
        relaunches[workflowID] = (at, failures)
        return at
    }

    private static func classify(_ end: RunEnd) -> Ending {
        switch end {
        case .returned(let output):
            return .finished(.completed, output: output, error: nil)
        case .threw(is CoordinatorUnavailable):
            // The time is set by `ended`, which counts the failures.
            return .relaunch(at: .distantFuture)
        case .threw(let divergence as WorkflowNondeterminism):
            return .diverged(divergence)
        case .threw(let next as ContinueAsNew):
            return .continued(input: next.input)
        case .threw(let error as ActivityError):
            return .finished(.failed, output: nil, error: .nonRetryable(error.failure.kind, "\(error.activity) failed: \(error.failure.message)"))
        case .threw(let error as ChildWorkflowError):
            return .finished(.failed, output: nil, error: .nonRetryable(error.failure.kind, "child workflow \(error.workflow) (\(error.workflowID)) failed: \(error.failure.message)"))
        case .threw(let failure as ActivityFailure):
            return .finished(.failed, output: nil, error: failure)
        case .threw(is CancellationError):
            return .finished(.cancelled, output: nil, error: .nonRetryable(.cancelled, "the workflow was cancelled"))
        case .threw(let error):
            return .finished(.failed, output: nil, error: .nonRetryable(.workflowError, "\(type(of: error)): \(error)"))
        }
    }

    /// Workflows suspended for a failure whose time to run again has come. A workflow that
    /// then gets through keeps its failure count until it ends, so a store that fails
    /// again and again is tried less and less often.
    mutating func dueRelaunches(at now: Date) -> [String] {
        let due = relaunches.filter { $0.value.at <= now && !running.contains($0.key) }.keys.sorted()
        for workflowID in due { relaunches[workflowID]?.at = .distantFuture }
        return due
    }

    /// Stops taking new work; every workflow here stops where it stands.
    mutating func shutDown() {
        isShuttingDown = true
    }

    // MARK: Steps

    /// A workflow waits on a step the store has no outcome for: sent, about to be sent
    /// (`sentAt` nil until ``stepSent(_:at:)``), or parked.
    mutating func awaitStep(_ messageID: String, _ step: AwaitedStep) {
        steps[messageID] = step
    }

    /// The step's request was sent (again) and confirmed; supervision counts from `at`.
    /// Ignored when the step's outcome came first.
    mutating func stepSent(_ messageID: String, at: Date) {
        guard steps[messageID] != nil else { return }
        steps[messageID]!.sentAt = at
        steps[messageID]!.lastHeardAt = nil
        steps[messageID]!.sends += 1
    }

    /// The step has its outcome, or its workflow no longer waits on it: no deadline runs.
    mutating func stepEnded(_ messageID: String) {
        steps[messageID] = nil
    }

    /// A progress reply: the step is alive.
    mutating func heard(_ messageID: String, at: Date) {
        steps[messageID]?.lastHeardAt = at
    }

    /// The step failed for good and waits for an operator's replay: no deadline runs.
    mutating func parked(_ messageID: String) {
        steps[messageID]?.sentAt = nil
    }

    /// The steps whose final reply is overdue at `now` (or whose heartbeat stopped): each is
    /// sent again under the same message id while it has re-sends left, then timed out.
    func overdue(at now: Date, queueName: (WorkQueue) -> String) -> [SupervisionAction] {
        steps.keys.sorted().compactMap { messageID in
            let step = steps[messageID]!
            guard let sentAt = step.sentAt else { return nil }
            let call = step.call
            let budget = call.options.scheduleToCloseTimeout ?? call.retryPolicy.worstCaseDuration(attemptTimeout: call.attemptTimeout) + replyGrace
            var reason: String?
            if now > sentAt.addingTimeInterval(budget.seconds) { reason = "no final reply within \(budget)" }
            if let heartbeatTimeout = call.options.heartbeatTimeout, let heard = step.lastHeardAt, now > heard.addingTimeInterval(heartbeatTimeout.seconds) {
                reason = "no heartbeat within \(heartbeatTimeout)"
            }
            guard let reason else { return nil }
            if step.sends <= call.options.maximumResends {
                return .resend(messageID: messageID, step: step, reason: reason)
            }
            let failure = ActivityFailure.nonRetryable(
                .activityTimedOut, "\(reason), after \(step.sends) sends: is a worker consuming \(queueName(call.queue))?"
            )
            return .timeOut(messageID: messageID, workflowID: step.workflowID, failure: failure)
        }
    }

    // MARK: Messages the coordinator could not handle

    /// A reply or command could not be recorded (the store failed): how long to wait before
    /// it goes back to its queue, growing while failures follow each other, so a store
    /// that is down is not hammered and the message does not reach the queue's delivery
    /// limit within moments.
    mutating func handlingFailed(random: Double) -> Duration {
        handlingFailures += 1
        return handlingBackoff.delay(afterFailures: handlingFailures, random: random)
    }

    mutating func handlingSucceeded() {
        handlingFailures = 0
    }

    /// How many steps are awaited here, for tests and metrics.
    var awaitedCount: Int { steps.count }
}

/// The coordinator could not record or send something; the workflow is suspended and
/// tried again, never failed for it.
struct CoordinatorUnavailable: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
