import FlowContracts
import FlowCore
import FlowCoordinator

/// `echo_chain`: `steps` echo activities one after another on `default-queue`, with an
/// optional durable pause between them. The smallest real workflow: for checking a
/// deployment end to end, and the workflow of the coordinator's benchmark.
public struct EchoChain: Workflow {
    public static let name = "echo_chain"

    public struct Input: Codable, Sendable {
        public var text: String
        public var steps: Int?
        /// A durable sleep between steps, in seconds.
        public var pauseSeconds: Int?

        public init(text: String, steps: Int? = nil, pauseSeconds: Int? = nil) {
            self.text = text
            self.steps = steps
            self.pauseSeconds = pauseSeconds
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var text: String
        public var steps: Int
    }

    /// The query `progress`: how many of its steps are done.
    public enum Progress: QueryDeclaration {
        public static let name = "progress"
        public struct Output: Codable, Sendable, Equatable {
            public var stepsDone: Int
            public var steps: Int
            /// The text as the last step left it.
            public var text: String
        }
    }

    struct Hop: Codable, Sendable {
        var text: String
        var step: Int
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
        let steps = input.steps ?? 3
        guard (1...1000).contains(steps) else { throw ActivityFailure.nonRetryable(.invalidInput, "steps must be from 1 to 1000, got \(steps)") }
        var text = input.text
        let progress = WorkflowState(Progress.Output(stepsDone: 0, steps: steps, text: text))
        context.onQuery(Progress.self) { progress.value }
        for step in 1...steps {
            if step > 1, let pause = input.pauseSeconds, pause > 0 {
                try await context.sleep(for: .seconds(pause))
            }
            let echoed = try await context.execute(Echo.self, try JSONText(encoding: Hop(text: text, step: step)))
            text = try echoed.decode(Hop.self).text
            progress.update { $0.stepsDone = step; $0.text = text }
        }
        return Output(text: text, steps: steps)
    }
}
