import FlowCore
import FlowCoordinator

/// `echo_fan_out`: `children` `echo_chain` workflows run side by side as child workflows,
/// and their outputs in order. The smallest real workflow with children: for checking a
/// deployment's child workflows end to end.
public struct EchoFanOut: Workflow {
    public static let name = "echo_fan_out"

    public struct Input: Codable, Sendable {
        public var text: String
        public var children: Int?
        /// Each child's steps and pause (`echo_chain`'s `steps` and `pause_seconds`).
        public var steps: Int?
        public var pauseSeconds: Int?

        public init(text: String, children: Int? = nil, steps: Int? = nil, pauseSeconds: Int? = nil) {
            self.text = text
            self.children = children
            self.steps = steps
            self.pauseSeconds = pauseSeconds
        }
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> [EchoChain.Output] {
        let count = input.children ?? 2
        guard (1...100).contains(count) else { throw ActivityFailure.nonRetryable(.invalidInput, "children must be from 1 to 100, got \(count)") }
        return try await withThrowingTaskGroup(of: (Int, EchoChain.Output).self) { group in
            for index in 0..<count {
                group.addTask {
                    let child = EchoChain.Input(text: "\(input.text) \(index)", steps: input.steps, pauseSeconds: input.pauseSeconds)
                    return (index, try await context.executeChild(EchoChain.self, child, id: "\(context.workflowID)-\(index)"))
                }
            }
            var outputs: [(Int, EchoChain.Output)] = []
            for try await output in group { outputs.append(output) }
            return outputs.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}
