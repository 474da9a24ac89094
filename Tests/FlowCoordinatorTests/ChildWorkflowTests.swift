import FlowCoordinator
import FlowCore
import FlowTesting
import Foundation
import Testing

/// Child workflows on the in-memory transport: results and failures reach the parent, a
/// crash anywhere starts nothing twice, and a parent that ends first applies its policy.
@Suite("child workflows on the in-memory transport")
struct ChildWorkflowTests {
    let counter = RunCounter()

    func harness(_ broker: InMemoryBroker = InMemoryBroker(), inMemoryStore: Bool = false) async throws -> CoordinatorHarness {
        try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: Switch()),
            transports: .inMemory(broker), clock: ManualWallClock(), inMemoryStore: inMemoryStore
        )
    }

    static let family = FamilyWorkflow.Output(counted: InMemoryCoordinatorTests.output, echo: .init(value: "a-again"))

    @Test("a parent gets its children's outputs; each child is a workflow of its own, linked to its parent", arguments: ["SQLite", "in memory"])
    func childrenComplete(store: String) async throws {
        let harness = try await harness(inMemoryStore: store == "in memory")
        try await harness.coordinator.start(workflow: FamilyWorkflow.name, id: "fam", input: InMemoryCoordinatorTests.input, recipient: nil)
        let record = try await harness.waitFor("fam", [.completed, .failed])
        #expect(try record.output?.decode(FamilyWorkflow.Output.self) == Self.family)
        let journal = try await harness.store.checkedJournal("fam")
        #expect(journal.entries.map(\.event.kind) == ["workflow_started", "child_scheduled", "child_completed", "child_scheduled", "child_completed", "workflow_completed"])
        let counted = try #require(try await harness.store.workflow(id: "fam-counted-0"))
        #expect(counted.parent == ParentLink(workflowID: "fam", position: 0) && counted.status == .completed)
        #expect(try await harness.store.workflow(id: "fam-sleepless_echo-1")?.parent == ParentLink(workflowID: "fam", position: 1))
        #expect(counter.all.count == 4 && counter.all.values.allSatisfy { $0 == 1 })
        let lines = try await harness.store.history(workflowID: "fam").map { "\($0.kind.rawValue) \($0.stepKey ?? "")" }
        #expect(lines.contains("child started fam-counted-0") && lines.contains("child completed fam-counted-0"))
        let described = try await WorkflowQueryAnswers(store: harness.store).describe(WorkflowQuery.Describe(workflowID: "fam"))
        #expect(described.children?.map { "\($0.position) \($0.workflowID) \($0.status) \($0.parentClosePolicy)" } == [
            "0 fam-counted-0 completed terminate", "1 fam-sleepless_echo-1 completed terminate",
        ])
        #expect(try await WorkflowQueryAnswers(store: harness.store).describe(WorkflowQuery.Describe(workflowID: "fam-counted-0")).parent == ParentSummary(workflowID: "fam", position: 0))
        await harness.shutdown()
    }

    @Test("a child that cannot start fails into its parent: a workflow not run here, an id another workflow holds")
    func childCannotStart() async throws {
        let harness = try await harness()
        try await harness.coordinator.start(workflow: DisappointedParent.name, id: "no-such", input: try JSONText(encoding: ""), recipient: nil)
        let unknown = try await harness.waitFor("no-such", [.completed, .failed])
        #expect(try unknown.output?.decode(String.self) == "unregistered no-such-unregistered-0: UnknownWorkflow")
        try await harness.coordinator.start(workflow: SleeplessEcho.name, id: "taken", input: InMemoryCoordinatorTests.input, recipient: nil)
        _ = try await harness.waitFor("taken", [.completed])
        try await harness.coordinator.start(workflow: DisappointedParent.name, id: "clash", input: try JSONText(encoding: "taken"), recipient: nil)
        let clash = try await harness.waitFor("clash", [.completed, .failed])
        #expect(try clash.output?.decode(String.self) == "sleepless_echo taken: InvalidInput")
        #expect(try await harness.store.workflow(id: "taken")?.parent == nil, "the workflow that held the id is untouched")
        await harness.shutdown()
    }

    @Test("a crash between any two writes of a parent and its children starts no child twice and runs no step twice", arguments: ["SQLite", "in memory"])
    func crashAtEveryPoint(store: String) async throws {
        let crashing = InMemoryCoordinatorTests()
        let input = InMemoryCoordinatorTests.input
        let writes = try await crashing.runWithCrash(afterWrites: .max, inMemoryStore: store == "in memory", workflow: FamilyWorkflow.name, input: input).writes
        #expect(writes >= 20, "the parent's and both children's writes")
        for crashPoint in 0..<writes {
            let run = try await crashing.runWithCrash(afterWrites: crashPoint, inMemoryStore: store == "in memory", workflow: FamilyWorkflow.name, input: input)
            #expect(try run.output?.decode(FamilyWorkflow.Output.self) == Self.family, "crash point \(crashPoint)")
            #expect(run.runs.count == 4 && run.runs.values.allSatisfy { $0 == 1 }, "crash point \(crashPoint): each activity ran once, \(run.runs)")
            #expect(run.journal == .success(2), "crash point \(crashPoint): the parent's journal has its two children")
            let child = try await run.store.checkedJournal("crash-counted-0")
            #expect(child.ending != nil && child.commands.count == 3, "crash point \(crashPoint): the child ran once, whole")
        }
    }

    @Test("a parent that ends first terminates or asks its running child to cancel, or leaves it running", arguments: ParentClosePolicy.allCases)
    func parentClosePolicy(policy: ParentClosePolicy) async throws {
        let broker = InMemoryBroker()
        let harness = try await harness(broker)
        let input = WaitingParent.Input(childID: "kid", policy: policy)
        try await harness.coordinator.start(workflow: WaitingParent.name, id: "parent", input: try JSONText(encoding: input), recipient: nil)
        try await waitUntil { try await harness.store.workflow(id: "kid") != nil }
        _ = try await harness.coordinator.signal(workflowID: "parent", name: Nudge.name, input: try JSONText(encoding: "bye"), signalID: "bye")
        let parent = try await harness.waitFor("parent", [.completed, .failed])
        #expect(try parent.output?.decode(String.self) == "bye")
        switch policy {
        case .terminate, .requestCancel:
            let kid = try await harness.waitFor("kid", [.cancelled, .completed, .failed])
            #expect(kid.status == .cancelled)
            let reason = try await harness.store.history(workflowID: "kid").first { $0.kind == .cancelRequested }?.detail ?? ""
            #expect(reason.contains("its parent parent ended") && reason.hasPrefix(policy == .terminate ? "terminated" : "its parent"), "\(reason)")
        case .abandon:
            #expect(try await harness.store.workflow(id: "kid")?.status == .running)
            _ = try await harness.coordinator.signal(workflowID: "kid", name: Nudge.name, input: try JSONText(encoding: "stop"), signalID: "stop")
            let kid = try await harness.waitFor("kid", [.completed, .failed, .cancelled])
            #expect(kid.status == .completed, "an abandoned child runs to its own end")
        }
        await harness.shutdown()
    }

    @Test("a child whose parent ended while the coordinator was down gets the parent's policy when it resumes", arguments: [ParentClosePolicy.terminate, .abandon])
    func orphanOnResume(policy: ParentClosePolicy) async throws {
        let harness = try await CoordinatorHarness(
            workflows: TestWorkflows.registry(), activities: TestWorkflows.activities(counter: counter, fixed: Switch()),
            transports: .inMemory(InMemoryBroker()), clock: ManualWallClock(), startsCoordinator: false
        )
        // As a coordinator that stopped right after the parent's end left them.
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let input = try JSONText(encoding: WaitingParent.Input(childID: "kid", policy: policy))
        _ = try await harness.store.create(WorkflowStart(id: "parent", name: WaitingParent.name, input: input), epoch: 0, at: at)
        let child = WorkflowEvent.ScheduledChild(position: 0, workflow: CollectingWorkflow.name, workflowID: "kid", input: InMemoryCoordinatorTests.input, parentClosePolicy: policy)
        try await harness.store.append(
            [.childScheduled(child), .signalReceived(id: "bye", name: Nudge.name, input: try JSONText(encoding: "bye")), .workflowCompleted(output: try JSONText(encoding: "bye"))],
            to: "parent", expectedSequence: 1, epoch: 0, at: at
        )
        _ = try await harness.store.create(WorkflowStart(id: "kid", name: CollectingWorkflow.name, input: InMemoryCoordinatorTests.input, parent: ParentLink(workflowID: "parent", position: 0)), epoch: 0, at: at)
        harness.startCoordinator()
        if policy == .abandon {
            try await waitUntil { try await harness.store.history(workflowID: "kid").contains { $0.kind == .workflowResumed } }
            #expect(try await harness.store.workflow(id: "kid")?.status == .running)
        } else {
            let kid = try await harness.waitFor("kid", [.cancelled, .completed, .failed])
            #expect(kid.status == .cancelled)
            #expect(try await harness.store.history(workflowID: "kid").contains { $0.kind == .cancelRequested && $0.detail.hasPrefix("terminated: its parent parent ended") })
        }
        await harness.shutdown()
    }
}
