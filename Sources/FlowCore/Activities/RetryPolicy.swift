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
    /// The shared ``Backoff`` without spread: the broker's fixed tiers decide the real wait.
    public func delay(afterAttempt attempt: Int) -> Duration {
        Backoff(initial: initialInterval, multiplier: backoffCoefficient, maximum: maximumInterval, jitter: 0).delay(afterFailures: attempt, random: 0.5)
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

extension RetryPolicy {
    /// The policy as the header ``FlowProtocol/Header/retryPolicy`` carries it: plain
    /// numbers in milliseconds, so any client can write one.
    public struct WireForm: Codable, Sendable, Equatable {
        public var initialIntervalMs: Int64
        public var backoffCoefficient: Double
        public var maximumIntervalMs: Int64
        public var maximumAttempts: Int
        public var nonRetryableErrorTypes: [String]
    }

    public var wireForm: WireForm {
        WireForm(
            initialIntervalMs: initialInterval.wholeMilliseconds, backoffCoefficient: backoffCoefficient,
            maximumIntervalMs: maximumInterval.wholeMilliseconds, maximumAttempts: maximumAttempts,
            nonRetryableErrorTypes: nonRetryableErrorTypes.sorted()
        )
    }

    public init(_ wire: WireForm) {
        self.init(
            initialInterval: .milliseconds(max(wire.initialIntervalMs, 0)), backoffCoefficient: max(wire.backoffCoefficient, 1),
            maximumInterval: .milliseconds(max(wire.maximumIntervalMs, 0)), maximumAttempts: max(wire.maximumAttempts, 1),
            nonRetryableErrorTypes: Set(wire.nonRetryableErrorTypes)
        )
    }

    /// The longest an activity can take under this policy when each attempt may run for
    /// `attemptTimeout`: every attempt timing out, with every delay between them.
    public func worstCaseDuration(attemptTimeout: Duration) -> Duration {
        var total = attemptTimeout * maximumAttempts
        for attempt in 1..<max(maximumAttempts, 1) {
            total += .milliseconds(delayTier(afterAttempt: attempt).milliseconds)
        }
        return total
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    public var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}

extension RetryPolicy {
    /// A `flow-retry-policy` header: any of the wire form's fields, the rest left to the
    /// activity's own policy. Publishers in other languages often write only what they
    /// change (`{"maximum_attempts": 2}`).
    public struct Override: Sendable, Hashable {
        public var initialInterval: Duration?
        public var backoffCoefficient: Double?
        public var maximumInterval: Duration?
        public var maximumAttempts: Int?
        public var nonRetryableErrorTypes: Set<String>?

        /// Reads the header's JSON; an error names the field with the wrong type or an
        /// out-of-range value.
        public init(headerJSON text: String) throws(RetryPolicyHeaderError) {
            struct Fields: Decodable {
                var initialIntervalMs: Double?
                var backoffCoefficient: Double?
                var maximumIntervalMs: Double?
                var maximumAttempts: Double?
                var nonRetryableErrorTypes: [String]?
            }
            let fields: Fields
            do {
                fields = try FlowJSON.decode(Fields.self, from: text)
            } catch let DecodingError.typeMismatch(type, context) where !context.codingPath.isEmpty {
                throw RetryPolicyHeaderError("field \(context.codingPath.map { JSONKeys.snakeCase($0.stringValue) }.joined(separator: ".")) must be \(type == [String].self || type == String.self ? "a list of strings" : "a number")")
            } catch {
                throw RetryPolicyHeaderError("is not a JSON object of retry settings")
            }
            func milliseconds(_ value: Double?, _ field: String) throws(RetryPolicyHeaderError) -> Duration? {
                guard let value else { return nil }
                guard value >= 0, value == value.rounded(), value < 1e15 else { throw RetryPolicyHeaderError("field \(field) must be a whole number of milliseconds from 0, got \(value)") }
                return .milliseconds(Int64(value))
            }
            initialInterval = try milliseconds(fields.initialIntervalMs, "initial_interval_ms")
            maximumInterval = try milliseconds(fields.maximumIntervalMs, "maximum_interval_ms")
            if let coefficient = fields.backoffCoefficient {
                guard coefficient >= 1, coefficient.isFinite else { throw RetryPolicyHeaderError("field backoff_coefficient must be at least 1, got \(coefficient)") }
                backoffCoefficient = coefficient
            }
            if let attempts = fields.maximumAttempts {
                guard attempts >= 1, attempts == attempts.rounded(), attempts < 1e9 else { throw RetryPolicyHeaderError("field maximum_attempts must be a whole number from 1, got \(attempts)") }
                maximumAttempts = Int(attempts)
            }
            nonRetryableErrorTypes = fields.nonRetryableErrorTypes.map(Set.init)
        }

        /// `policy` with the fields this header gives replaced.
        public func applied(to policy: RetryPolicy) -> RetryPolicy {
            RetryPolicy(
                initialInterval: initialInterval ?? policy.initialInterval, backoffCoefficient: backoffCoefficient ?? policy.backoffCoefficient,
                maximumInterval: maximumInterval ?? policy.maximumInterval, maximumAttempts: maximumAttempts ?? policy.maximumAttempts,
                nonRetryableErrorTypes: nonRetryableErrorTypes ?? policy.nonRetryableErrorTypes
            )
        }
    }
}

/// Why a `flow-retry-policy` header was refused.
public struct RetryPolicyHeaderError: Error, CustomStringConvertible {
    public var description: String
    public init(_ problem: String) { description = "header \(FlowProtocol.Header.retryPolicy) \(problem) (docs/protocol.md)" }
}
