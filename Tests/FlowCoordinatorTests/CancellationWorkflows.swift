import FlowCoordinator
import FlowCore
import FlowRuntime
import Foundation

/// `waits_for_cancel`: runs for a minute unless its attempt is cancelled first. It counts
/// `started <message id>` and, when cancelled, `cancelled <message id>`.
struct WaitsForCancel: Activity {
    static let name = "waits_for_cancel"
    static let queue = WorkQueue.default
    typealias Input = Empty
    typealias Output = Empty
    let counter: RunCounter

    func run(_ input: Empty, context: ActivityContext) async throws -> Empty {
        counter.record("started \(context.messageID)")
        do {
            try await Task.sleep(for: .seconds(60))
        } catch {
            counter.record("cancelled \(context.messageID)")
            throw error
        }
        return input
    }
}

/// Waits on `waits_for_cancel`; when cancelled, cleans up with a shielded `counted_echo`.
struct CleanupWorkflow: Workflow {
    static let name = "cleanup"

    func run(context: WorkflowContext, input: Empty) async throws -> String {
        do {
            _ = try await context.execute(WaitsForCancel.self, Empty())
            return "not cancelled"
        } catch is CancellationError {
            let cleaned = try await context.shielded { try await context.execute(CountedEcho.self, .init(value: "cleanup")) }
            context.logger.info("cleaned up: \(cleaned.value)")
            throw CancellationError()
        }
    }
}

/// Races `waits_for_cancel` against `counted_echo` in a task group, and gives up on the
/// loser: the workers are asked to stop it.
struct RacingWorkflow: Workflow {
    static let name = "racing"

    func run(context: WorkflowContext, input: Empty) async throws -> String {
        try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask { _ = try await context.execute(WaitsForCancel.self, Empty()); return "slow" }
            group.addTask { try await context.execute(CountedEcho.self, .init(value: "fast")).value }
            let winner = try await group.next()!
            group.cancelAll()
            return winner
        }
    }
}

/// `gate`: reports its attempt as progress, then waits until the test opens its switch (or
/// its attempt is cancelled). It counts `gate <message id> attempt <n> from <details>`,
/// the details being those its attempt started from.
struct Gate: Activity {
    static let name = "gate"
    static let queue = WorkQueue.default
    typealias Input = Empty
    typealias Output = Int
    let counter: RunCounter
    let open: Switch

    func run(_ input: Empty, context: ActivityContext) async throws -> Int {
        counter.record("gate \(context.messageID) attempt \(context.attempt) from \(context.lastHeartbeatDetails?.text ?? "-")")
        await context.heartbeat(["attempt": context.attempt])
        while !open.isOn { try await Task.sleep(for: .milliseconds(20)) }
        return context.attempt
    }
}

/// Waits on `gate`, and returns the attempt that passed it.
struct GatedWorkflow: Workflow {
    static let name = "gated"

    func run(context: WorkflowContext, input: Empty) async throws -> Int {
        try await context.execute(Gate.self, Empty())
    }
}
