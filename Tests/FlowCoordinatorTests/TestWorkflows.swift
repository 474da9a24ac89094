import FlowCoordinator
import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// `counted_echo`: echoes its input and counts each real run by message id.
struct CountedEcho: Activity {
    static let name = "counted_echo"
    static let queue = WorkQueue.default
    typealias Input = Payload
    typealias Output = Payload
    let counter: RunCounter

    struct Payload: Codable, Sendable, Equatable {
        var value: String
    }

    func run(_ input: Payload, context: ActivityContext) async throws -> Payload {
        counter.record(context.messageID)
        return input
    }
}

/// `hangs_on_first_attempt`: the first attempt outlasts any timeout; later ones answer at once.
struct HangsOnFirstAttempt: Activity {
    static let name = "hangs_on_first_attempt"
    static let queue = WorkQueue.default
    typealias Input = Empty

    struct Output: Codable, Sendable, Equatable {
        var attempt: Int
    }

    func run(_ input: Empty, context: ActivityContext) async throws -> Output {
        if context.attempt == 1 { try await Task.sleep(for: .seconds(60)) }
        return Output(attempt: context.attempt)
    }
}

/// `needs_a_fix`: fails for good until the test turns its switch on.
struct NeedsAFix: Activity {
    static let name = "needs_a_fix"
    static let queue = WorkQueue.default
    typealias Input = Empty
    let fixed: Switch

    struct Output: Codable, Sendable, Equatable {
        var fixed: Bool
    }

    func run(_ input: Empty, context: ActivityContext) async throws -> Output {
        guard fixed.isOn else { throw ActivityFailure.nonRetryable(.init(rawValue: "NotReady"), "the dependency is not configured") }
        return Output(fixed: true)
    }
}

/// An activity of `ml-queue`, where no worker runs in these tests.
enum Unserved: ActivityDeclaration {
    static let name = "unserved"
    static let queue = WorkQueue.ml
    typealias Input = Empty
    typealias Output = Empty
}

/// Three counted steps, two of them in parallel.
struct CountedWorkflow: Workflow {
    static let name = "counted"

    struct Output: Codable, Sendable, Equatable {
        var first: String
        var left: String
        var right: String
    }

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> Output {
        let first = try await context.execute(CountedEcho.self, input)
        async let left = context.execute(CountedEcho.self, .init(value: first.value + "-left"))
        async let right = context.execute(CountedEcho.self, .init(value: first.value + "-right"))
        return Output(first: first.value, left: try await left.value, right: try await right.value)
    }
}

struct TimeoutWorkflow: Workflow {
    static let name = "timeout"

    func run(context: WorkflowContext, input: Empty) async throws -> HangsOnFirstAttempt.Output {
        try await context.execute(
            HangsOnFirstAttempt.self, Empty(),
            options: .init(startToCloseTimeout: .seconds(1), retryPolicy: RetryPolicy(initialInterval: .seconds(1), maximumAttempts: 3))
        )
    }
}

struct ParkingWorkflow: Workflow {
    static let name = "parking"

    func run(context: WorkflowContext, input: Empty) async throws -> NeedsAFix.Output {
        try await context.execute(NeedsAFix.self, Empty())
    }
}

struct CatchingWorkflow: Workflow {
    static let name = "catching"

    func run(context: WorkflowContext, input: Empty) async throws -> String {
        do {
            _ = try await context.execute(NeedsAFix.self, Empty(), options: .init(onFinalFailure: .throw))
            return "no failure"
        } catch let error as ActivityError {
            return "caught \(error.failure.type)"
        }
    }
}

struct LostWorkerWorkflow: Workflow {
    static let name = "lost_worker"

    func run(context: WorkflowContext, input: Empty) async throws -> Empty {
        try await context.execute(Unserved.self, Empty(), options: .init(scheduleToCloseTimeout: .milliseconds(800), maximumResends: 1))
    }
}

struct SleepyWorkflow: Workflow {
    static let name = "sleepy"

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> CountedEcho.Payload {
        try await context.sleep(for: .seconds(3))
        return try await context.execute(CountedEcho.self, input)
    }
}

/// A signal that carries a word.
enum Nudge: SignalDeclaration {
    static let name = "nudge"
    typealias Input = String
}

/// The words a workflow has taken so far.
enum WordsSoFar: QueryDeclaration {
    static let name = "words_so_far"
    typealias Output = [String]
}

/// Waits for two nudges, echoes their words through `counted_echo`, and returns them.
struct NudgedWorkflow: Workflow {
    static let name = "nudged"

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> [String] {
        let words = WorkflowState<[String]>([])
        context.onQuery(WordsSoFar.self) { words.value }
        let first = try await context.receive(Nudge.self)
        let echoed = try await context.execute(CountedEcho.self, .init(value: first))
        words.update { $0.append(echoed.value) }
        let second = try await context.receive(Nudge.self)
        words.update { $0.append(second) }
        return words.value
    }
}

/// Collects the words of its nudges until one says "stop", and returns them.
struct CollectingWorkflow: Workflow {
    static let name = "collecting"

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> [String] {
        var words: [String] = []
        while true {
            let word = try await context.receive(Nudge.self)
            if word == "stop" { return words }
            words.append(word)
        }
    }
}

/// Collects nudges in a signal handler until it has two, and returns them.
struct HandlingWorkflow: Workflow {
    static let name = "handling"

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> [String] {
        let words = WorkflowState<[String]>([])
        context.onSignal(Nudge.self) { word in words.update { $0.append(word) } }
        context.onQuery(WordsSoFar.self) { words.value }
        let echoed = try await context.execute(CountedEcho.self, input)
        try await context.condition { words.value.count >= 2 }
        return [echoed.value] + words.value
    }
}

/// An update that sets a deadline, in days; zero or less is rejected.
enum SetDeadline: UpdateDeclaration {
    static let name = "set_deadline"
    struct Input: Codable, Sendable { var days: Int }
    typealias Output = String
}

enum Deadline: QueryDeclaration {
    static let name = "deadline"
    typealias Output = Int
}

/// Takes deadline updates until a nudge says "done", then returns the deadline.
struct DeadlineWorkflow: Workflow {
    static let name = "deadline"

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> Int {
        let deadline = WorkflowState(0)
        let done = WorkflowState(false)
        context.onUpdate(SetDeadline.self, validator: { input in
            guard input.days > 0 else { throw ActivityFailure.nonRetryable(.invalidInput, "a deadline is at least 1 day, not \(input.days)") }
        }) { input in
            deadline.value = input.days
            return "deadline set to \(input.days) days"
        }
        context.onQuery(Deadline.self) { deadline.value }
        context.onSignal(Nudge.self) { word in if word == "done" { done.value = true } }
        try await context.condition { done.value }
        return deadline.value
    }
}

enum TestWorkflows {
    static func registry() -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(NudgedWorkflow())
        registry.register(CollectingWorkflow())
        registry.register(HandlingWorkflow())
        registry.register(DeadlineWorkflow())
        registry.register(CountedWorkflow())
        registry.register(TimeoutWorkflow())
        registry.register(ParkingWorkflow())
        registry.register(CatchingWorkflow())
        registry.register(LostWorkerWorkflow())
        registry.register(SleepyWorkflow())
        registry.register(SleeplessEcho())
        registry.register(FamilyWorkflow())
        registry.register(WaitingParent())
        registry.register(DisappointedParent())
        registry.register(CleanupWorkflow())
        registry.register(RacingWorkflow())
        registry.register(FilingWorkflow())
        registry.register(LoopingWorkflow())
        registry.register(ResettableWorkflow())
        registry.register(GatedWorkflow())
        return registry
    }

    static func activities(counter: RunCounter, fixed: Switch) -> ActivityRegistry {
        var registry = ActivityRegistry()
        registry.register(CountedEcho(counter: counter))
        registry.register(HangsOnFirstAttempt())
        registry.register(NeedsAFix(fixed: fixed))
        registry.register(WaitsForCancel(counter: counter))
        registry.register(Gate(counter: counter, open: fixed))
        return registry
    }
}
