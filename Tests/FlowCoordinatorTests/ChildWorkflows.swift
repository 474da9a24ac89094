import FlowCoordinator
import FlowCore
import Foundation

/// Runs `counted` as a child, then `sleepless_echo` as a second one, and returns both.
struct FamilyWorkflow: Workflow {
    static let name = "family"

    struct Output: Codable, Sendable, Equatable {
        var counted: CountedWorkflow.Output
        var echo: CountedEcho.Payload
    }

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> Output {
        let counted = try await context.executeChild(CountedWorkflow.self, input)
        let echo = try await context.executeChild(SleeplessEcho.self, .init(value: counted.first + "-again"))
        return Output(counted: counted, echo: echo)
    }
}

/// Starts `collecting` (which waits for nudges) as a child under the policy its input
/// names, then returns the first nudge it receives itself, leaving the child running.
struct WaitingParent: Workflow {
    static let name = "waiting_parent"

    struct Input: Codable, Sendable {
        var childID: String
        var policy: ParentClosePolicy
    }

    func run(context: WorkflowContext, input: Input) async throws -> String {
        async let child = context.executeChild(CollectingWorkflow.self, .init(value: "-"), id: input.childID, parentClosePolicy: input.policy)
        let word = try await context.receive(Nudge.self)
        return word
    }
}

/// A workflow no coordinator in the tests runs.
struct Unregistered: Workflow {
    static let name = "unregistered"

    func run(context: WorkflowContext, input: Empty) async throws -> Empty { input }
}

/// Starts a child it cannot have (not registered, or an id another workflow holds) and
/// returns how that failed.
struct DisappointedParent: Workflow {
    static let name = "disappointed_parent"

    func run(context: WorkflowContext, input: String) async throws -> String {
        do {
            if input.isEmpty {
                _ = try await context.executeChild(Unregistered.self, Empty())
            } else {
                _ = try await context.executeChild(SleeplessEcho.self, .init(value: "x"), id: input)
            }
            return "started"
        } catch let error as ChildWorkflowError {
            return "\(error.workflow) \(error.workflowID): \(error.failure.type)"
        }
    }
}

/// Files itself under search attributes as it goes, with a memo.
struct FilingWorkflow: Workflow {
    static let name = "filing"

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> String {
        try context.upsertSearchAttributes(["format": .text(input.value), "pages": .number(3), "urgent": .bool(true)])
        try context.upsertMemo(["source": .string("upload")])
        let echoed = try await context.execute(CountedEcho.self, input)
        try context.upsertSearchAttributes(["pages": .number(4), "urgent": nil])
        return echoed.value
    }
}
