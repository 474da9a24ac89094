import FlowCoordinator
import FlowCore

/// Echoes each nudge's word through `counted_echo`, two nudges a run, continuing as new
/// with the words so far until it has `total`: three runs for five words.
struct LoopingWorkflow: Workflow {
    static let name = "looping"

    struct State: Codable, Sendable {
        var words: [String] = []
        var total = 5
    }

    func run(context: WorkflowContext, input: State) async throws -> [String] {
        var state = input
        for _ in 0..<2 {
            let word = try await context.receive(Nudge.self)
            state.words.append(try await context.execute(CountedEcho.self, .init(value: word)).value)
            if state.words.count == state.total { return state.words }
        }
        throw context.continueAsNew(with: state)
    }
}

/// Echoes "a" and "b" (commands 0 and 1), then collects nudges until one says "stop":
/// what a reset cuts back into.
struct ResettableWorkflow: Workflow {
    static let name = "resettable"

    func run(context: WorkflowContext, input: CountedEcho.Payload) async throws -> [String] {
        var words = [try await context.execute(CountedEcho.self, .init(value: "a")).value]
        words.append(try await context.execute(CountedEcho.self, .init(value: "b")).value)
        while true {
            let word = try await context.receive(Nudge.self)
            if word == "stop" { return words }
            words.append(word)
        }
    }
}
