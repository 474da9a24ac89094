import FlowCore
import Testing

@testable import FlowCoordinator

/// Commands run side by side in lanes, one workflow's (or schedule's) in one lane, so they
/// keep the order they came in.
@Suite struct CommandLaneTests {
    func lane(_ body: String, messageID: String? = nil) -> Int {
        WorkflowCoordinator.lane(body: Array(body.utf8), messageID: messageID)
    }

    @Test("every command naming a workflow takes that workflow's lane, whatever its kind")
    func oneWorkflowOneLane() {
        let start = lane(#"{"workflow":"echo_chain","workflow_id":"order-7","input":{"text":"x"}}"#)
        #expect(lane(#"{"workflow_id":"order-7","name":"approve_training","input":true}"#) == start)
        #expect(lane(#"{"workflow_id":"order-7","reason":"no longer needed"}"#) == start)
        #expect(lane(#"{"workflow":"echo_chain"}"#, messageID: "order-7") == start, "a start without workflow_id is named by its message id")
        #expect(lane(#"{"name":"nightly","workflow":"echo_chain","every_seconds":60}"#) == lane(#"{"name":"nightly"}"#), "a schedule's commands share a lane")
    }

    @Test("workflows spread over the lanes, and a body that does not decode goes to lane 0")
    func spread() {
        let lanes = Set((0..<200).map { lane(#"{"workflow_id":"w-\#($0)"}"#) })
        #expect(lanes.count > WorkflowCoordinator.commandLanes / 2)
        #expect(lanes.allSatisfy { (0..<WorkflowCoordinator.commandLanes).contains($0) })
        #expect(lane("not json") == 0)
        #expect(lane("[1,2]") == 0)
    }
}
