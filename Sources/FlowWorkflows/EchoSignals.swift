import FlowContracts
import FlowCore
import FlowCoordinator

/// `echo_signals`: echoes the text of each `add` signal through `echo`, in the order the
/// signals were recorded, until a `done` signal; returns the texts. The smallest workflow
/// that people (or other systems) drive with signals: for checking a deployment's signals
/// end to end, as `echo_chain` checks its steps.
public struct EchoSignals: Workflow {
    public static let name = "echo_signals"

    /// A text to echo.
    public enum Add: SignalDeclaration {
        public static let name = "add"
        public typealias Input = String
    }

    /// No more texts: the workflow returns.
    public enum Done: SignalDeclaration {
        public static let name = "done"
        public typealias Input = JSONText
    }

    /// The query `texts`: the texts echoed so far.
    public enum Texts: QueryDeclaration {
        public static let name = "texts"
        public typealias Output = [String]
    }

    public init() {}

    public func run(context: WorkflowContext, input: JSONText) async throws -> [String] {
        let texts = WorkflowState<[String]>([])
        context.onQuery(Texts.self) { texts.value }
        while let signal = try await context.receive(oneOf: [Add.self, Done.self]), signal.is(Add.self) {
            let text = try signal.input(as: Add.self)
            let echoed = try await context.execute(Echo.self, try JSONText(encoding: ["text": text])).decode([String: String].self)["text", default: ""]
            texts.update { $0.append(echoed) }
        }
        return texts.value
    }
}
