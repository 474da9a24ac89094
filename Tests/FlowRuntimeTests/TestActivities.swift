import FlowCore
import FlowRuntime
import Foundation

/// Side effects the test activities record, to prove what ran and how often.
actor SideEffects {
    private(set) var calls: [String: Int] = [:]
    private(set) var attempts: [String: [(attempt: Int, at: ContinuousClock.Instant)]] = [:]

    func call(_ key: String) -> Int {
        calls[key, default: 0] += 1
        return calls[key]!
    }

    func attempt(_ key: String, _ attempt: Int) {
        attempts[key, default: []].append((attempt, ContinuousClock.now))
    }

    func attemptTimes(_ key: String) -> [(attempt: Int, at: ContinuousClock.Instant)] { attempts[key] ?? [] }
}

struct CountCalls: Activity {
    static let name = "count_calls"
    static let queue = WorkQueue.default
    struct Input: Codable, Sendable { var key: String }
    struct Output: Codable, Sendable { var calls: Int }
    let effects: SideEffects
    func run(_ input: Input, context: ActivityContext) async throws -> Output {
        Output(calls: await effects.call(input.key))
    }
}

struct Flaky: Activity {
    static let name = "flaky"
    static let queue = WorkQueue.default
    static var retryPolicy: RetryPolicy { RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 1, maximumAttempts: 5) }
    struct Input: Codable, Sendable { var key: String; var succeedOnAttempt: Int }
    struct Output: Codable, Sendable { var attempt: Int }
    let effects: SideEffects
    func run(_ input: Input, context: ActivityContext) async throws -> Output {
        await effects.attempt(input.key, context.attempt)
        guard context.attempt >= input.succeedOnAttempt else {
            throw ActivityFailure.retryable(.init(rawValue: "Flaky"), "attempt \(context.attempt) fails on purpose")
        }
        return Output(attempt: context.attempt)
    }
}

struct AlwaysFails: Activity {
    static let name = "always_fails"
    static let queue = WorkQueue.default
    static var retryPolicy: RetryPolicy { RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 1, maximumAttempts: 3) }
    typealias Input = Empty
    typealias Output = Empty
    func run(_ input: Empty, context: ActivityContext) async throws -> Empty {
        throw ActivityFailure.retryable(.init(rawValue: "DependencyDown"), "the dependency is down on attempt \(context.attempt)")
    }
}

struct RejectsInput: Activity {
    static let name = "rejects_input"
    static let queue = WorkQueue.default
    typealias Input = Empty
    typealias Output = Empty
    func run(_ input: Empty, context: ActivityContext) async throws -> Empty {
        throw ActivityFailure.nonRetryable(.invalidInput, "this input can never work")
    }
}

struct Typed: Activity {
    static let name = "typed"
    static let queue = WorkQueue.default
    struct Input: Codable, Sendable { var count: Int }
    struct Output: Codable, Sendable { var doubled: Int }
    func run(_ input: Input, context: ActivityContext) async throws -> Output { Output(doubled: input.count * 2) }
}

struct ResumesFromHeartbeat: Activity {
    static let name = "resumes"
    static let queue = WorkQueue.default
    static var retryPolicy: RetryPolicy { RetryPolicy(initialInterval: .seconds(1), maximumAttempts: 3) }
    struct Progress: Codable, Sendable { var step: Int }
    typealias Input = Empty
    struct Output: Codable, Sendable { var resumedFrom: Int? }
    func run(_ input: Empty, context: ActivityContext) async throws -> Output {
        if context.attempt == 1 {
            await context.heartbeat(Progress(step: 5))
            throw ActivityFailure.retryable(.init(rawValue: "Interrupted"), "stopped after step 5")
        }
        return Output(resumedFrom: context.lastHeartbeat(as: Progress.self)?.step)
    }
}

struct Sleeps: Activity {
    static let name = "sleeps"
    static let queue = WorkQueue.default
    static var startToCloseTimeout: Duration { .milliseconds(300) }
    static var retryPolicy: RetryPolicy { RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 1, maximumAttempts: 2) }
    typealias Input = Empty
    typealias Output = Empty
    func run(_ input: Empty, context: ActivityContext) async throws -> Empty {
        try await Task.sleep(for: .seconds(30))
        return Empty()
    }
}

func testRegistry(_ effects: SideEffects) -> ActivityRegistry {
    var registry = ActivityRegistry()
    registry.register(CountCalls(effects: effects))
    registry.register(Flaky(effects: effects))
    registry.register(AlwaysFails())
    registry.register(RejectsInput())
    registry.register(Typed())
    registry.register(ResumesFromHeartbeat())
    registry.register(Sleeps())
    return registry
}
