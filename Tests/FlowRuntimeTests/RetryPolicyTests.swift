import FlowCore
import Testing

@Suite("retry policies")
struct RetryPolicyTests {
    @Test("delays grow by the coefficient up to the maximum interval")
    func backoff() {
        let policy = RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 2, maximumInterval: .seconds(10))
        #expect(policy.delay(afterAttempt: 1) == .seconds(1))
        #expect(policy.delay(afterAttempt: 2) == .seconds(2))
        #expect(policy.delay(afterAttempt: 4) == .seconds(8))
        #expect(policy.delay(afterAttempt: 5) == .seconds(10))
    }

    @Test("the broker tier chosen is the nearest to the wanted delay")
    func tiers() {
        let policy = RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 2, maximumInterval: .seconds(3600))
        #expect(policy.delayTier(afterAttempt: 1).label == "1s")
        #expect(policy.delayTier(afterAttempt: 3).label == "5s")
        #expect(policy.delayTier(afterAttempt: 6).label == "30s")
        #expect(policy.delayTier(afterAttempt: 8).label == "2m")
        #expect(policy.delayTier(afterAttempt: 20).label == "1h")
    }

    @Test("non-retryable failures, listed types and the last attempt are not retried")
    func retryDecisions() {
        let policy = RetryPolicy(maximumAttempts: 3, nonRetryableErrorTypes: ["QuotaExceeded"])
        #expect(policy.shouldRetry(.retryable(.timeout, "slow"), afterAttempt: 1))
        #expect(!policy.shouldRetry(.retryable(.timeout, "slow"), afterAttempt: 3))
        #expect(!policy.shouldRetry(.nonRetryable(.invalidInput, "bad"), afterAttempt: 1))
        #expect(!policy.shouldRetry(.retryable(.init(rawValue: "QuotaExceeded"), "no"), afterAttempt: 1))
    }
}
