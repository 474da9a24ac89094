import FlowClient
import FlowCoordinator
import FlowCore
import FlowTesting
import FlowTransport
import Foundation
import Logging
import Testing

/// The coordinator's read-only queries (`docs/protocol.md`, "Queries"), asked through
/// ``CoordinatorClient`` on the in-memory transport.
@Suite("the coordinator's queries on the in-memory transport")
struct InMemoryQueryTests {
    let counter = RunCounter()
    let fixed = Switch()
    let logger = Logger(label: "test.queries")

    func harness(_ broker: InMemoryBroker = InMemoryBroker(), clock: ManualWallClock = ManualWallClock()) async throws -> CoordinatorHarness {
        try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: fixed),
            transports: .inMemory(broker), clock: clock
        )
    }

    /// Workflows written to the store with the start times a test needs: `count` of them,
    /// a second apart from `first`, alternating names, every third one failed.
    func seed(_ store: any WorkflowStore, count: Int, first: Date) async throws -> [String] {
        var ids: [String] = []
        for index in 0..<count {
            let id = "seed-\(String(format: "%03d", index))"
            let at = first.addingTimeInterval(Double(index))
            _ = try await store.create(WorkflowStart(id: id, name: index.isMultiple(of: 2) ? "even" : "odd", input: JSONText.emptyObject), epoch: 0, at: at)
            if index.isMultiple(of: 3) {
                try await store.append([.workflowFailed(failure: .nonRetryable(.workflowError, "seeded"))], to: id, expectedSequence: 1, epoch: 0, at: at)
            }
            ids.append(id)
        }
        return ids
    }

    @Test("a list filters by status, name, start time and id text, and its pages never repeat or skip a workflow while others start")
    func listFiltersAndPages() async throws {
        let harness = try await harness()
        let first = Date(timeIntervalSince1970: 1_800_000_000)
        let ids = try await seed(harness.store, count: 25, first: first)
        try await CoordinatorClient.withClient(transport: harness.requester, names: harness.names, logger: logger) { client in
            var seen: [String] = []
            var page: String?
            var pages = 0
            repeat {
                let answer = try await client.query(.list, WorkflowQuery.List(limit: 10, page: page), as: WorkflowPage.self)
                #expect(answer.total == 25 + pages, "the total counts what matches now")
                seen += answer.workflows.map(\.id)
                page = answer.nextPage
                pages += 1
                // A workflow that starts between two pages is newer than the cursor: it
                // neither shifts the pages after nor appears in them.
                _ = try await harness.store.create(WorkflowStart(id: "late-\(pages)", name: "late", input: JSONText.emptyObject), epoch: 0, at: first.addingTimeInterval(1000 + Double(pages)))
            } while page != nil
            #expect(pages == 3)
            #expect(seen == ids.reversed(), "newest first, each once")

            let failedEven = try await client.query(.list, WorkflowQuery.List(statuses: [.failed], name: "even"), as: WorkflowPage.self)
            #expect(failedEven.workflows.map(\.id) == ids.indices.filter { $0.isMultiple(of: 6) }.reversed().map { ids[$0] })
            let window = try await client.query(.list, WorkflowQuery.List(startedAfter: first.addingTimeInterval(4.5), startedBefore: first.addingTimeInterval(7.5)), as: WorkflowPage.self)
            #expect(window.workflows.map(\.id) == ["seed-007", "seed-006", "seed-005"])
            let text = try await client.query(.list, WorkflowQuery.List(idContains: "-01"), as: WorkflowPage.self)
            #expect(text.total == 10)
            #expect(text.workflows.allSatisfy { $0.id.hasPrefix("seed-01") })
        }
        await harness.shutdown()
    }

    @Test("describe gives a workflow's input, output and steps, and its history comes in pages that add up to all of it")
    func describeAndHistory() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: CountedWorkflow.name, id: "w1", input: InMemoryCoordinatorTests.input, recipient: nil)
        _ = try await harness.waitFor("w1", [.completed, .failed], timeout: .seconds(120))
        let stored = try await harness.store.history(workflowID: "w1")
        try await CoordinatorClient.withClient(transport: harness.requester, names: harness.names, logger: logger) { client in
            let described = try await client.query(.describe, WorkflowQuery.Describe(workflowID: "w1"), as: WorkflowDescription.self)
            #expect(described.workflow.status == .completed)
            #expect(described.input == InMemoryCoordinatorTests.input)
            #expect(try described.output?.decode(CountedWorkflow.Output.self) == InMemoryCoordinatorTests.output)
            #expect(described.steps.count == 3)
            #expect(described.steps.allSatisfy { $0.status == "completed" && $0.output != nil && $0.sends == 1 })

            var events: [WorkflowHistoryEvent] = []
            var after: Int64?
            var pages = 0
            repeat {
                let page = try await client.query(.history, WorkflowQuery.History(workflowID: "w1", after: after, limit: 2), as: WorkflowHistoryPage.self)
                #expect(page.events.count <= 2)
                events += page.events
                after = page.nextAfter
                pages += 1
            } while after != nil
            #expect(pages == (stored.count + 1) / 2)
            #expect(events.map(\.kind) == stored.map(\.kind.rawValue))
            #expect(events.map(\.sequence) == events.map(\.sequence).sorted())
        }
        await harness.shutdown()
    }

    @Test("a query it cannot answer is answered with the reason, and one with nowhere to answer is dead-lettered with it")
    func refusals() async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker)
        try await CoordinatorClient.withClient(transport: harness.requester, names: harness.names, logger: logger) { client in
            let unknown = await #expect(throws: CoordinatorClient.Refused.self) {
                try await client.query(.describe, WorkflowQuery.Describe(workflowID: "nope"), as: WorkflowDescription.self)
            }
            #expect(unknown?.message.contains("no workflow has id nope") == true)
            let badPage = await #expect(throws: CoordinatorClient.Refused.self) {
                try await client.query(.list, WorkflowQuery.List(page: "garbage!"), as: WorkflowPage.self)
            }
            #expect(badPage?.message.contains("not a page token") == true)
            let wrongShape = await #expect(throws: CoordinatorClient.Refused.self) {
                try await client.query(.list, ["limit": "ten"], as: WorkflowPage.self)
            }
            #expect(wrongShape?.message.contains("'limit' should be Int") == true)
        }
        // Without a reply_to.
        try await harness.requester.publish(
            AMQPMessage(routingKey: harness.names.name(Topology.workflowCommandQueue), properties: .init(messageID: "q-1", type: WorkflowQuery.Kind.list.rawValue), body: Array("{}".utf8))
        )
        try await waitUntil { !broker.messages(in: harness.names.deadLetterQueue).isEmpty }
        let letter = try #require(broker.messages(in: harness.names.deadLetterQueue).first)
        #expect(letter.properties.messageID == "q-1")
        #expect(letter.properties.headers?[FlowProtocol.Header.failureReason]?.stringValue?.contains("has no reply_to") == true)
        await harness.shutdown()
    }

    @Test("the schedule list gives each schedule's next run, and the workflow its last run started")
    func schedules() async throws {
        let clock = ManualWallClock()
        let harness = try await harness(clock: clock)
        try await CoordinatorClient.withClient(transport: harness.requester, names: harness.names, logger: logger) { client in
            let added = try await client.command(.addSchedule, WorkflowCommand.AddSchedule(name: "minutely", workflow: CountedWorkflow.name, input: InMemoryCoordinatorTests.input, everySeconds: 60))
            #expect(added.accepted)
            let before = try await client.query(.schedules, WorkflowQuery.Schedules(), as: ScheduleList.self)
            #expect(before.schedules.map(\.name) == ["minutely"])
            #expect(before.schedules.first?.lastWorkflowID == nil)
            try await clock.advanceWhenAsleep(by: .seconds(61))
            // The run's workflow is recorded before the schedule's run: wait for both.
            try await waitUntil {
                let schedule = try await client.query(.schedules, WorkflowQuery.Schedules(), as: ScheduleList.self).schedules.first
                return schedule?.lastStatus != nil && schedule?.runs ?? 0 > 0
            }
            let after = try await client.query(.schedules, WorkflowQuery.Schedules(), as: ScheduleList.self)
            let schedule = try #require(after.schedules.first)
            #expect(schedule.runs == 1)
            #expect(schedule.lastWorkflowID?.hasPrefix("minutely@") == true)
            #expect(schedule.nextRunAt > before.schedules[0].nextRunAt)
        }
        await harness.shutdown()
    }
}
