import FlowCore
import Foundation

/// One recorded run of a workflow: its id, its workflow's name and its journal. It is what
/// `flow workflow show ID --json` writes and what ``WorkflowReplayer`` and
/// `flow workflow replay-check --history FILE` read.
///
/// ```json
/// {"workflow": "echo_chain", "workflow_id": "w-1", "events": [
///   {"sequence": 1, "epoch": 0, "recorded_at": "2026-12-07T10:00:00.000Z",
///    "event": {"kind": "workflow_started", "name": "echo_chain", "input": {"text": "hi"}}}, …]}
/// ```
public struct WorkflowHistory: Sendable, Codable, Equatable {
    public var workflowID: String
    /// The workflow's name.
    public var workflow: String
    public var events: [JournalEntry]

    public init(workflowID: String, workflow: String, events: [JournalEntry]) {
        self.workflowID = workflowID
        self.workflow = workflow
        self.events = events
    }

    /// Reads a history file; the error says what is wrong with it.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw WorkflowStoreError("cannot read the history file \(url.path): \(error.localizedDescription)")
        }
        do {
            self = try FlowJSON.decode(WorkflowHistory.self, from: data)
        } catch let error as DecodingError {
            throw WorkflowStoreError("\(url.path) is not a workflow history (`flow workflow show ID --json` writes one): \(FlowJSON.describe(error))")
        }
    }
}
