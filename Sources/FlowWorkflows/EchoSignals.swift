import FlowContracts
import FlowCore
import FlowCoordinator

/// `echo_signals`: echoes the text of each `add` signal through `echo`, in the order the
/// signals were recorded, until a `done` signal; returns the texts. The smallest workflow
/// that people (or other systems) drive with signals: for checking a deployment's signals
/// end to end, as `echo_chain` checks its steps.
///
/// The update `note` adds a text at once, without an echo. With `continue_after`, it
/// continues as new after that many echoes, carrying its texts: the smallest long-lived
/// workflow, for checking that signals and updates cross from run to run.
public struct EchoSignals: Workflow {
    public static let name = "echo_signals"

    public struct Input: Codable, Sendable {
        /// The texts so far: what a run hands the next.
        public var texts: [String]?
        /// Continue as new after this many echoes in a run.
        public var continueAfter: Int?

        public init(texts: [String]? = nil, continueAfter: Int? = nil) {
            self.texts = texts
            self.continueAfter = continueAfter
        }
    }

    /// Adds `note: <text>` to the texts at once; answers how many texts there are. An
    /// empty text is refused, and leaves no trace.
    public enum Note: UpdateDeclaration {
        public static let name = "note"
        public typealias Input = String
        public typealias Output = Int
    }

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

    public func run(context: WorkflowContext, input: Input) async throws -> [String] {
        let texts = WorkflowState<[String]>(input.texts ?? [])
        context.onQuery(Texts.self) { texts.value }
        context.onUpdate(Note.self, validator: { text in
            guard !text.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "a note needs a text") }
        }) { text in
            texts.update { $0.append("note: \(text)") }
            return texts.value.count
        }
        var echoes = 0
        while let signal = try await context.receive(oneOf: [Add.self, Done.self]), signal.is(Add.self) {
            let text = try signal.input(as: Add.self)
            let echoed = try await context.execute(Echo.self, try JSONText(encoding: ["text": text])).decode([String: String].self)["text", default: ""]
            texts.update { $0.append(echoed) }
            echoes += 1
            if let limit = input.continueAfter, limit > 0, echoes >= limit {
                throw context.continueAsNew(with: Input(texts: texts.value, continueAfter: limit))
            }
        }
        return texts.value
    }
}
