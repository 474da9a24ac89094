import FlowCore
import Foundation
import Logging
import Synchronization

/// What a running workflow uses to call activities, wait, and know where it is. Everything
/// that must come out the same on a replay goes through here.
public final class WorkflowContext: Sendable {
    /// The workflow's id (the idempotency key of its start).
    public let workflowID: String
    /// The workflow's name.
    public let workflowName: String
    /// When the workflow first started: the same on every replay, so usable as "now".
    public let startedAt: Date
    /// A logger carrying the workflow's id.
    public let logger: Logger

    private let coordinator: WorkflowCoordinator
    /// How many calls of each identity were made so far in this run: the occurrence part
    /// of a step's key.
    private let occurrences = Mutex<[String: Int]>([:])

    init(coordinator: WorkflowCoordinator, workflowID: String, workflowName: String, startedAt: Date, logger: Logger) {
        self.coordinator = coordinator
        self.workflowID = workflowID
        self.workflowName = workflowName
        self.startedAt = startedAt
        var logger = logger
        logger[metadataKey: "workflow.id"] = "\(workflowID)"
        logger[metadataKey: "workflow.name"] = "\(workflowName)"
        self.logger = logger
    }

    /// Runs an activity on its queue's worker and returns its output. A step that already
    /// finished in an earlier run of this workflow returns its recorded output without
    /// being sent again.
    ///
    /// Throws ``ActivityError`` when the activity fails for good and `options` say
    /// `.throw` (by default the workflow parks until the message is replayed), or when the
    /// coordinator gives up waiting for it.
    public func execute<A: ActivityDeclaration>(_ activity: A.Type, _ input: A.Input, options: ActivityOptions = .init()) async throws -> A.Output {
        let inputText = try JSONText(encoding: input)
        let key = stepKey(identity: "\(A.name)#\(Self.digest(inputText.text))")
        let call = ActivityCall(
            activity: A.name, queue: A.queue, input: inputText, options: options,
            declaredTimeout: A.startToCloseTimeout, declaredRetryPolicy: A.retryPolicy
        )
        let output = try await coordinator.executeStep(workflowID: workflowID, stepKey: key, call: call, logger: logger)
        do {
            return try output.decode(A.Output.self)
        } catch {
            throw ActivityError(
                activity: A.name,
                failure: .nonRetryable(.outputMismatch, "the output of \(A.name) does not decode as \(A.Output.self): \(error). Is the worker a different version?")
            )
        }
    }

    /// Waits durably: a restart of the coordinator does not restart the wait, and a wait
    /// that ended while the coordinator was down ends at once when it returns.
    public func sleep(for duration: Duration) async throws {
        let key = stepKey(identity: "sleep#\(duration.wholeMilliseconds)ms")
        try await coordinator.sleep(workflowID: workflowID, timerKey: key, duration: duration)
    }

    /// Activity calls made so far in this run, recorded ones included: at the end of a run,
    /// the workflow's steps.
    var activitySteps: Int {
        occurrences.withLock { counts in counts.filter { !$0.key.hasPrefix("sleep#") }.values.reduce(0, +) }
    }

    /// `<identity>#<occurrence>`: the n-th call with this identity in this run.
    private func stepKey(identity: String) -> String {
        let occurrence = occurrences.withLock { counts in
            counts[identity, default: 0] += 1
            return counts[identity]!
        }
        return "\(identity)#\(occurrence)"
    }

    /// A short, stable digest of an activity's canonical input (FNV-1a, 64 bits).
    static func digest(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// An activity call as the coordinator sends it.
struct ActivityCall: Sendable, Equatable {
    var activity: String
    var queue: WorkQueue
    var input: JSONText
    var options: ActivityOptions
    var declaredTimeout: Duration
    var declaredRetryPolicy: RetryPolicy

    var attemptTimeout: Duration { options.startToCloseTimeout ?? declaredTimeout }
    var retryPolicy: RetryPolicy { options.retryPolicy ?? declaredRetryPolicy }
}
