import FlowCoordinator
import FlowCore
import Foundation
import Testing

/// The store's half of continue-as-new and reset (``WorkflowStore/startNextRun(of:closing:journal:childrenFrom:expectedSequence:epoch:at:)``).
extension WorkflowStoreConformance {
    /// Workflow `w` after the script's first four writes (step 0 done; steps 1 and 2 and a
    /// marker issued), with children started at positions 4 and 5.
    static func familyBeforeRun(_ subject: Subject) async throws -> any WorkflowStore {
        let store = try await play(subject, writes: 4, crashing: false)
        for position in [4, 5] {
            let child = WorkflowEvent.ScheduledChild(position: position, workflow: "counted", workflowID: "kid\(position)", input: input, parentClosePolicy: .abandon)
            let last = try await store.journal(workflowID: "w").last!.sequence
            try await store.append([.childScheduled(child)], to: "w", expectedSequence: last, epoch: 0, at: at)
            _ = try await store.create(WorkflowStart(id: "kid\(position)", name: "counted", input: input, parent: ParentLink(workflowID: "w", position: position)), epoch: 0, at: at)
        }
        return store
    }

    @Test("a reset's next run takes the id, and the run before keeps its journal, steps, history and later children under <id>@run-1; a stale write changes nothing", arguments: Subject.all)
    func resetRun(_ subject: Subject) async throws {
        let store = try await Self.familyBeforeRun(subject)
        let journal = try WorkflowJournal(try await store.journal(workflowID: "w"))
        let next = try journal.resetJournal(to: 5, keepSignals: true, epoch: 0)
        let closing = WorkflowEvent.workflowReset(position: 5, reason: "an operator")
        let before = try await Self.projection(store)
        await #expect {
            try await store.startNextRun(of: "w", closing: closing, journal: next, childrenFrom: 5, requestID: nil, expectedSequence: journal.lastSequence - 1, epoch: 0, at: Self.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .sequenceConflict }
        await #expect {
            try await store.startNextRun(of: "w", closing: closing, journal: next, childrenFrom: 5, requestID: nil, expectedSequence: journal.lastSequence, epoch: -1, at: Self.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .staleEpoch }
        #expect(try await Self.projection(store) == before, "the refused writes changed nothing")
        #expect(try await store.workflow(id: "w@run-1") == nil)

        let at = Self.at.addingTimeInterval(100)
        let record = try await store.startNextRun(of: "w", closing: closing, journal: next, childrenFrom: 5, requestID: nil, expectedSequence: journal.lastSequence, epoch: 0, at: at)
        #expect(record.id == "w" && record.run == 2 && record.chainID == "w" && record.status == .running && record.startedAt == at)
        let old = try #require(try await store.workflow(id: "w@run-1"))
        #expect(old.status == .reset && old.run == 1 && old.chainID == "w" && old.parent == nil && old.finishedAt == at)
        #expect(try await store.journal(workflowID: "w@run-1").map(\.event) == journal.entries.map(\.event) + [closing])
        #expect(try await store.journal(workflowID: "w").map(\.event) == next.map(\.event))

        // Steps: the old run's under its own id, those still open cancelled by its end; the
        // next run's under the workflow's id, waiting again.
        let oldSteps = try await store.steps(workflowID: "w@run-1")
        #expect(oldSteps.map(\.messageID) == ["w@run-1/counted_echo@0", "w@run-1/counted_echo@1", "w@run-1/needs_a_fix@2"])
        #expect(oldSteps.map(\.status) == [.completed, .cancelled, .cancelled])
        let steps = try await store.steps(workflowID: "w")
        #expect(steps.map(\.messageID) == ["w/counted_echo@0", "w/counted_echo@1", "w/needs_a_fix@2"])
        #expect(steps.map(\.status) == [.completed, .scheduled, .scheduled])
        #expect(try await store.step(messageID: "w/counted_echo@1")?.workflowID == "w")
        #expect(try await store.step(messageID: "w@run-1/counted_echo@1")?.status == .cancelled)

        #expect(try await store.recipients(workflowID: "w") == [ResultRecipient(replyTo: "starter", correlationID: "c")], "the starter waits for the last run")
        #expect(try await store.recipients(workflowID: "w@run-1").isEmpty)
        #expect(try await store.workflow(id: "kid4")?.parent == ParentLink(workflowID: "w", position: 4), "a child before the cut is the next run's")
        #expect(try await store.workflow(id: "kid5")?.parent == ParentLink(workflowID: "w@run-1", position: 5), "one from the cut on stays with the old run")
        #expect(try await store.history(workflowID: "w@run-1").last?.kind == .workflowReset)
        #expect(try await store.history(workflowID: "w").first?.detail.contains("run 2, after run 1 (w@run-1) was reset to before command 5: an operator") == true)
        #expect(try await store.runs(of: "w").map(\.id) == ["w@run-1", "w"])
        #expect(try await store.unfinishedWorkflows().map(\.id).contains("w@run-1") == false)
    }

    @Test("each continue-as-new keeps the run before under its number; a run that had ended keeps its end; an id taken by another workflow is refused", arguments: Subject.all)
    func continuedRuns(_ subject: Subject) async throws {
        let store = try await subject.open()
        _ = try await store.create(WorkflowStart(id: "w", name: "counted", input: Self.input), epoch: 0, at: Self.at)
        for run in 1...2 {
            let input = try JSONText(encoding: ["run": run + 1])
            let next = [JournalEntry(sequence: 1, epoch: 0, recordedAt: Self.at, event: .workflowStarted(name: "counted", input: input))]
            let last = try await store.journal(workflowID: "w").last!.sequence
            let record = try await store.startNextRun(of: "w", closing: .workflowContinuedAsNew(input: input), journal: next, childrenFrom: 0, requestID: nil, expectedSequence: last, epoch: 0, at: Self.at)
            #expect(record.run == run + 1 && record.input == input)
        }
        #expect(try await store.runs(of: "w").map(\.status) == [.continuedAsNew, .continuedAsNew, .running])
        #expect(try await store.journal(workflowID: "w@run-2").last?.event.kind == "workflow_continued_as_new")

        // Reset after the end: the run keeps its end, and no closing event is written.
        try await store.append([.workflowCompleted(output: Self.input)], to: "w", expectedSequence: 1, epoch: 0, at: Self.at)
        let started = [JournalEntry(sequence: 1, epoch: 0, recordedAt: Self.at, event: .workflowStarted(name: "counted", input: Self.input))]
        _ = try await store.startNextRun(of: "w", closing: nil, journal: started, childrenFrom: 0, requestID: nil, expectedSequence: 2, epoch: 0, at: Self.at)
        #expect(try await store.workflow(id: "w@run-3")?.status == .completed)
        #expect(try await store.journal(workflowID: "w@run-3").count == 2)

        _ = try await store.create(WorkflowStart(id: "w@run-4", name: "counted", input: Self.input), epoch: 0, at: Self.at)
        await #expect {
            try await store.startNextRun(of: "w", closing: .workflowContinuedAsNew(input: Self.input), journal: started, childrenFrom: 0, requestID: nil, expectedSequence: 1, epoch: 0, at: Self.at)
        } throws: { ($0 as? WorkflowStoreError)?.code == .unavailable }
        #expect(try await store.workflow(id: "w")?.run == 4, "refused, changing nothing")
    }
}
