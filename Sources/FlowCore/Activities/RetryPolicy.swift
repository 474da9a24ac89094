import Foundation

/// How an activity's failed attempts are retried, in Temporal's terms.
///
/// The delay before attempt `n + 1` is `initialInterval * backoffCoefficient^(n - 1)`,
/// capped at `maximumInterval`. The broker keeps the delay in fixed tiers
/// (``Topology/retryDelayTiers``), so the wait is the tier nearest to that delay.
public struct RetryPolicy: Sendable, Hashable, Codable {
    public var initialInterval: Duration
    public var backoffCoefficient: Double
    public var maximumInterval: Duration
    /// Attempts in all, the first included. Temporal's default is unlimited; ours is 5,
    /// because an unlimited retry of a message nobody watches is a silent loop.
    public var maximumAttempts: Int
    /// Error types (``ActivityFailure/type``) that are never retried.
    public var nonRetryableErrorTypes: Set<String>

    public init(
        initialInterval: Duration = .seconds(1),
        backoffCoefficient: Double = 2.0,
        maximumInterval: Duration = .seconds(100),
        maximumAttempts: Int = 5,
        nonRetryableErrorTypes: Set<String> = []
    ) {
        self.initialInterval = initialInterval
        self.backoffCoefficient = backoffCoefficient
        self.maximumInterval = maximumInterval
        self.maximumAttempts = maximumAttempts
        self.nonRetryableErrorTypes = nonRetryableErrorTypes
    }

    /// The delay the policy asks for after attempt `attempt` (1-based) failed.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let initial = Double(initialInterval.components.seconds) + Double(initialInterval.components.attoseconds) / 1e18
        let maximum = Double(maximumInterval.components.seconds) + Double(maximumInterval.components.attoseconds) / 1e18
        var seconds = initial
        for _ in 1..<max(attempt, 1) { seconds *= backoffCoefficient }
        return .milliseconds(Int64(min(seconds, maximum) * 1000))
    }

    /// Whether attempt `attempt` (1-based) failing with `failure` gets another attempt.
    public func shouldRetry(_ failure: ActivityFailure, afterAttempt attempt: Int) -> Bool {
        failure.retryable && !nonRetryableErrorTypes.contains(failure.type) && attempt < maximumAttempts
    }

    /// The broker's delay tier nearest (by ratio) to the delay after `attempt`.
    public func delayTier(afterAttempt attempt: Int) -> RetryDelayTier {
        let delay = delay(afterAttempt: attempt)
        let wanted = max(Double(delay.components.seconds) * 1000 + Double(delay.components.attoseconds) / 1e15, 1)
        return Topology.retryDelayTiers.min { first, second in
            abs(log(Double(first.milliseconds) / wanted)) < abs(log(Double(second.milliseconds) / wanted))
        }!
    }
}
