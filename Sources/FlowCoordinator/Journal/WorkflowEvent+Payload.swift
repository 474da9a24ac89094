import FlowCore
import Foundation
import Synchronization

/// The stored text of the events every step writes, built directly.
///
/// A store writes an event's wire form for each command and each answer. Through
/// Foundation's `JSONEncoder` that walks the input and output values again, though each is
/// a ``JSONText`` whose canonical text is at hand, and it encodes the same activity options
/// for every step. Here the text is put together from those parts, keys in sorted order as
/// ``FlowJSON`` writes them, so it reads back to the same event (a test holds the two
/// forms equal). Kinds written once per workflow or less take the `Codable` path.
extension WorkflowEvent {
    /// The event's wire form, as ``FlowJSON/encodeText(_:pretty:)`` writes it.
    public func payloadText() throws -> String {
        switch self {
        case .activityScheduled(let scheduled):
            return #"{"kind":"activity_scheduled","scheduled":{"activity":\#(Self.quoted(scheduled.activity)),"input":\#(scheduled.input.text),"#
                + #""options":\#(try Self.optionsText(scheduled.options)),"position":\#(scheduled.position),"queue":\#(Self.quoted(scheduled.queue)),"#
                + #""step_key":\#(Self.quoted(scheduled.stepKey))}}"#
        case .activityCompleted(let position, let attempt, let output):
            return #"{"attempt":\#(attempt),"kind":"activity_completed","output":\#(output.text),"position":\#(position)}"#
        case .workflowStarted(let name, let input):
            return #"{"input":\#(input.text),"kind":"workflow_started","name":\#(Self.quoted(name))}"#
        case .workflowCompleted(let output):
            return #"{"kind":"workflow_completed","output":\#(output.text)}"#
        default:
            return try FlowJSON.encodeText(self)
        }
    }

    static func quoted(_ text: String) -> String { FlowJSON.stringLiteral(text) }

    /// The wire form of a step's options: a workflow uses a handful of them over and over,
    /// so the last few are kept.
    package static func optionsText(_ options: ActivityOptions) throws -> String {
        if let text = recentOptions.withLock({ $0.first { $0.options == options }?.text }) { return text }
        let text = try FlowJSON.encodeText(options)
        recentOptions.withLock { recent in
            recent.insert((options, text), at: 0)
            if recent.count > 16 { recent.removeLast() }
        }
        return text
    }

    private static let recentOptions = Mutex<[(options: ActivityOptions, text: String)]>([])
}
