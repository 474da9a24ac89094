import FlowCore
import FlowRuntime
import Testing

private enum SlowDeclaration: ActivityDeclaration {
    static let name = "slow_thing"
    static let queue = WorkQueue.ml
    static let retryPolicy = RetryPolicy(initialInterval: .seconds(7), maximumAttempts: 2)
    static let startToCloseTimeout: Duration = .seconds(90)
    typealias Input = Empty
    typealias Output = Empty
}

private struct SlowActivity: DeclaredActivity {
    typealias Declaration = SlowDeclaration
    func run(_ input: Input, context: ActivityContext) async throws -> Output { Empty() }
}

@Suite("activities implementing a declaration")
struct DeclaredActivityTests {
    @Test("take their name, queue, retry policy and timeout from the declaration")
    func takeEverythingFromTheDeclaration() {
        #expect(SlowActivity.name == "slow_thing")
        #expect(SlowActivity.queue == .ml)
        #expect(SlowActivity.retryPolicy == SlowDeclaration.retryPolicy)
        #expect(SlowActivity.startToCloseTimeout == .seconds(90))
    }
}
