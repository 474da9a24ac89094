import FlowCoordinator
import FlowCore
import FlowTesting
import FlowTransport
import Foundation
import Synchronization
import Testing

/// What waits in a workflow's inbox when its run ends before it began: every sender is
/// answered. A reply handler that waited for ever would hold its reply unacknowledged, and
/// a coordinator's stop would wait on that handler: under the full suite's load, a test
/// that stopped a coordinator as it started hung there until CI's limit.
@Suite("a run's inbox")
struct RunInboxTests {
    let counter = RunCounter()
    let open = Switch()

    @Test("a reply that reaches a workflow whose run cannot read its journal is recorded without it; the run comes again and finishes, and the coordinator stops")
    func replyToARunThatNeverBegan() async throws {
        let broker = InMemoryBroker()
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: open), transports: .inMemory(broker)
        )
        try await harness.coordinator.start(workflow: GatedWorkflow.name, id: "inbox", input: .emptyObject, recipient: nil)
        try await waitUntil { try await harness.store.step(messageID: "inbox/gate@0")?.heartbeat != nil }
        await harness.stopCoordinator()

        // The step's reply waits for the next coordinator (sent here as the worker would; the
        // worker's own attempt stays behind the closed gate).
        let reply = ActivityReply(status: .completed, activity: Gate.name, messageID: "inbox/gate@0", attempt: 1, output: try JSONText(validating: "7"))
        try await harness.requester.publish(
            AMQPMessage(routingKey: harness.names.coordinatorReplyQueue, properties: .init(correlationID: "inbox/gate@0"), body: Array(try FlowJSON.encode(reply)))
        )
        // The next coordinator's first read of the journal fails, once the reply has been
        // taken from the queue and handed to the run's inbox.
        let failed = Mutex(false)
        let requester = harness.requester
        let replyQueue = harness.names.coordinatorReplyQueue
        let store = CrashingStore(harness.store, writesBeforeCrash: .max, failsJournalRead: { workflowID in
            guard workflowID == "inbox", !failed.withLock({ $0 }) else { return false }
            try? await waitUntil(timeout: .seconds(30)) { try await requester.inspectQueue(replyQueue).messageCount == 0 }
            try? await Task.sleep(for: .milliseconds(200))
            failed.withLock { $0 = true }
            return true
        })
        harness.startCoordinator(store: store)

        try await waitUntil(timeout: .seconds(60)) { try await harness.store.step(messageID: "inbox/gate@0")?.status == .completed }
        #expect(failed.withLock { $0 })
        #expect(try await harness.waitFor("inbox", [.completed, .failed]).output?.decode(Int.self) == 7)
        open.turnOn()
        await harness.shutdown()
    }
}
