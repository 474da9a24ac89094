import FlowCore
import Testing

@Suite("a flow-retry-policy header from any publisher")
struct RetryPolicyHeaderTests {
    let own = RetryPolicy(initialInterval: .seconds(3), backoffCoefficient: 3, maximumInterval: .seconds(60), maximumAttempts: 7, nonRetryableErrorTypes: ["Bad"])

    @Test("a header with only some fields takes the rest from the activity's own policy")
    func partialHeader() throws {
        let policy = try RetryPolicy.Override(headerJSON: #"{"maximum_attempts": 2}"#).applied(to: own)
        #expect(policy.maximumAttempts == 2)
        #expect(policy.initialInterval == .seconds(3))
        #expect(policy.backoffCoefficient == 3)
        #expect(policy.maximumInterval == .seconds(60))
        #expect(policy.nonRetryableErrorTypes == ["Bad"])
        let full = try RetryPolicy.Override(headerJSON: #"{"initial_interval_ms": 500, "backoff_coefficient": 1.5, "maximum_interval_ms": 9000, "maximum_attempts": 4, "non_retryable_error_types": ["X"]}"#).applied(to: own)
        #expect(full == RetryPolicy(initialInterval: .milliseconds(500), backoffCoefficient: 1.5, maximumInterval: .milliseconds(9000), maximumAttempts: 4, nonRetryableErrorTypes: ["X"]))
        #expect(try RetryPolicy.Override(headerJSON: "{}").applied(to: own) == own)
    }

    @Test("a field of the wrong type or out of range is refused, and the error names it", arguments: [
        (#"{"maximum_attempts": "two"}"#, "maximum_attempts"),
        (#"{"maximum_attempts": 0}"#, "maximum_attempts"),
        (#"{"maximum_attempts": 2.5}"#, "maximum_attempts"),
        (#"{"backoff_coefficient": 0.5}"#, "backoff_coefficient"),
        (#"{"initial_interval_ms": -1}"#, "initial_interval_ms"),
        (#"{"non_retryable_error_types": "Bad"}"#, "non_retryable_error_types"),
        (#"[1, 2]"#, "not a JSON object"),
    ])
    func invalidField(header: String, named: String) {
        #expect { try RetryPolicy.Override(headerJSON: header) } throws: { "\($0)".contains(named) && "\($0)".contains("flow-retry-policy") }
    }
}
