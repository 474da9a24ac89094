import FlowContracts
import FlowCoordinator
import FlowCore
import FlowTestKit
import FlowWorkflows
import Foundation
import Logging
import Synchronization
import Testing

/// `document_onboarding`'s own logic, on FlowTestKit: what it asks of each actor, with
/// which inputs, in which order, and what it makes of the answers. No broker and no worker:
/// the workers' activities have their own tests; these are the workflow's.
@Suite("document_onboarding's workflow code")
struct DocumentOnboardingTests {
    static let analysis = try! FlowJSON.decode(AnalyzeDocumentContent.Output.self, from: #"""
        {"document_id":"doc-1","analysis":{"summary":"A plan.","themes":["plans"],"risks":[],"decisions":[],"open_questions":[]},
         "model":"gpt-4o-mini","parts":1,"prompt_versions":["analyze_document@1"],"usage":{"prompt_tokens":10,"completion_tokens":5,"cost_usd":0.0,"calls":1,"cached_calls":0}}
        """#)

    /// Stubs for every activity of the workflow; `analyze` answers the OpenAI step.
    func environment(analyze: @escaping @Sendable (AnalyzeDocumentContent.Input) throws -> AnalyzeDocumentContent.Output = { _ in analysis }) -> WorkflowTestEnvironment {
        var environment = WorkflowTestEnvironment()
        environment.stub(ProcessDocumentUpload.self) { input in
            .init(
                documentID: input.documentID ?? "doc-1", source: input.path ?? "blob", format: .markdown, sizeBytes: 40, characters: 38, words: 7, lines: 2,
                metadata: [:], textBlobID: "blob-text", text: "# Plan\nShip it in May. Then review.", textTruncated: false
            )
        }
        environment.stub(ParseDocument.self) { input in
            #expect(input.textBlobID == "blob-text", "parse reads the text the upload stored")
            return .init(
                characters: 38, sectionCount: 1, chunkCount: 2, sections: [.init(title: "Plan", start: 0, characters: 38)],
                chunks: [.init(index: 0, start: 0, characters: 20, section: 0, text: "Ship it in May."), .init(index: 1, start: 20, characters: 12, section: 0, text: "Then \"review\".")]
            )
        }
        environment.stub(StoragePut.self) { input in .init(blobID: "blob-dataset", size: input.text?.utf8.count ?? 0) }
        environment.stub(AnalyzeDocumentContent.self) { try analyze($0) }
        environment.stub(TrainOrganizationalModel.self) { input in .init(jobID: input.jobID, adapterPath: "training/\(input.jobID)/adapter", steps: 12, finalLoss: 1.5) }
        environment.stub(EvaluateModel.self) { input in .init(jobID: input.jobID, evalLoss: 1.75, perplexity: 5.75, samples: 2) }
        return environment
    }

    @Test("a document is read, its chunks become the training set, and analysis and training run side by side into one summary")
    func wholeRun() async throws {
        let run = try await environment().run(DocumentOnboarding(), input: .init(path: "docs/plan.md", documentID: "doc-1"))
        #expect(run.status == .completed, "\(String(describing: run.error)) \(run.parkedReason ?? "")")
        let output = try run.output(as: DocumentOnboarding.Output.self)
        let document = output.document
        #expect([document.documentID, document.source, document.format, document.datasetBlobID] == ["doc-1", "docs/plan.md", "markdown", "blob-dataset"])
        #expect([document.characters, document.words, document.sections, document.chunks] as [Int] == [38, 7, 1, 2])
        let model = try #require(output.model)
        #expect(output.approval == nil)
        #expect(model.jobID == "onboarding-doc-1" && model.adapterPath == "training/onboarding-doc-1/adapter" && model.trainingSteps == 12)
        #expect([model.finalLoss, model.evalLoss, model.perplexity] as [Double] == [1.5, 1.75, 5.75], "passed through unchanged")
        #expect(output.analysis == Self.analysis)

        // The training set is one JSON line per chunk, as the ML actor reads it.
        let dataset = try #require(try run.calls(of: StoragePut.self).first?.text)
        let lines = dataset.split(separator: "\n").map { try? FlowJSON.decode([String: String].self, from: String($0)) }
        #expect(lines == [["text": "Ship it in May."], ["text": "Then \"review\"."]])
        let training = try #require(try run.calls(of: TrainOrganizationalModel.self).first)
        #expect(training.baseModel == DocumentOnboarding.defaultBaseModel && training.dataset == "blob-dataset")
        #expect(try run.calls(of: EvaluateModel.self).first?.adapterPath == "training/onboarding-doc-1/adapter", "evaluation reads the adapter training wrote")

        // Upload, parse and store in turn; then the analysis and training are both asked for
        // before either answers (side by side), and evaluation follows training.
        let events = try run.journal.entries.map(\.event)
        let order = try run.journal.commands.compactMap { if case .activity(let scheduled, _) = $0 { scheduled.activity } else { nil } }
        // The activities open workflows recorded before the approval step existed, in their
        // order: the search attributes and the report come behind patches (VersioningTests).
        #expect(order == ["process_document_upload", "parse_document", "storage_put", "train_organizational_model", "analyze_document_content", "evaluate_model", "storage_put"])
        // The report, stored last: the output without its own blob id.
        #expect(output.reportBlobID == "blob-dataset")
        let report = try #require(try run.calls(of: StoragePut.self).last?.text)
        #expect(try FlowJSON.decode(DocumentOnboarding.Output.self, from: report).document.documentID == "doc-1")
        // Positions 3 and 4 are the markers of the search attributes' patch.
        let bothScheduled = try #require(events.lastIndex { if case .activityScheduled(let s) = $0 { s.position == 6 } else { false } })
        let firstAnswer = try #require(events.firstIndex { if case .activityCompleted(let position, _, _) = $0 { position >= 5 } else { false } })
        #expect(bothScheduled < firstAnswer, "\(events.map(\.kind))")
        let replay = await WorkflowReplayer(registry: ApplicationWorkflows.registry(), logger: Logger(label: "test")).replay(run.history)
        #expect(replay.replays, "\(replay)")
    }

    @Test("without an API key the analysis is dead-lettered and parks the workflow, while training and evaluation run to their end")
    func parksOnMissingKey() async throws {
        let environment = environment { _ in throw ActivityFailure.nonRetryable(.missingAPIKey, "OPENAI_API_KEY is not set") }
        let run = try await environment.run(DocumentOnboarding(), input: .init(blobID: "blob-in", documentID: "doc-2", baseModel: "models/qwen"))
        #expect(run.status == .parked)
        #expect(run.parkedReason?.contains("analyze_document_content") == true && run.parkedReason?.contains("MissingAPIKey") == true, "\(run.parkedReason ?? "")")
        #expect(try run.calls(of: TrainOrganizationalModel.self).map(\.baseModel) == ["models/qwen"])
        #expect(try run.calls(of: EvaluateModel.self).count == 1, "the other branch ran to its end, so a replay leaves only the analysis to do")
    }

    @Test("with require_approval the analysis comes first, and training waits for approve_training: approved, rejected, or no decision within the timeout", arguments: [
        ("approve", Duration.seconds(3600), "approved", true, 3600.0),
        ("reject", .seconds(60), "rejected", false, 60),
        ("none", .zero, "timed_out", false, 7200),
    ])
    func approval(signal: String, after: Duration, decision: String, trains: Bool, seconds: Double) async throws {
        var environment = environment()
        switch signal {
        case "approve": try environment.signal(DocumentOnboarding.ApproveTraining.self, .init(approver: "ada"), after: after)
        case "reject": try environment.signal(DocumentOnboarding.RejectTraining.self, .init(reason: "confidential"), after: after)
        default: break
        }
        let run = try await environment.run(DocumentOnboarding(), input: .init(path: "docs/plan.md", documentID: "doc-3", requireApproval: true, approvalTimeoutSeconds: 7200))
        #expect(run.status == .completed, "\(String(describing: run.error)) \(run.parkedReason ?? "")")
        let output = try run.output(as: DocumentOnboarding.Output.self)
        #expect(output.approval?.decision == decision)
        #expect(output.approval?.approver == (signal == "approve" ? "ada" : nil) && output.approval?.reason == (signal == "reject" ? "confidential" : nil))
        #expect((output.model != nil) == trains)
        #expect(try run.calls(of: TrainOrganizationalModel.self).count == (trains ? 1 : 0), "training runs only when approved")
        #expect(output.analysis == Self.analysis)
        #expect(run.endTime == environment.startTime.addingTimeInterval(seconds))
        let order = try run.journal.commands.map { command -> String in
            switch command {
            case .activity(let scheduled, _): scheduled.activity
            case .timer: "timer"
            case .marker(let name, _): name
            case .child(let child, _): "child \(child.workflow)"
            }
        }
        let expected = ["process_document_upload", "parse_document", "storage_put", "patch:file-search-attributes", "search_attributes", "analyze_document_content", "timer"] + (trains ? ["train_organizational_model", "evaluate_model"] : [])
            + ["patch:store-onboarding-report", "storage_put"]
        #expect(order == expected)
        let replay = await WorkflowReplayer(registry: ApplicationWorkflows.registry(), logger: Logger(label: "test")).replay(run.history)
        #expect(replay.replays, "\(replay)")
    }
}

extension DocumentOnboardingTests {
    @Test("progress says where a run stands: done with its decision, or the stage it stopped at")
    func progress() async throws {
        let timedOut = try await environment().run(DocumentOnboarding(), input: .init(path: "a.md", documentID: "doc-4", requireApproval: true, approvalTimeoutSeconds: 60))
        #expect(try await timedOut.query(DocumentOnboarding.Progress.self) == .init(stage: "done", documentID: "doc-4", approval: "timed_out"))
        let parked = try await environment { _ in throw ActivityFailure.nonRetryable(.missingAPIKey, "no key") }
            .run(DocumentOnboarding(), input: .init(path: "a.md", documentID: "doc-5"))
        #expect(parked.status == .parked)
        #expect(try await parked.query(DocumentOnboarding.Progress.self) == .init(stage: "analysing and training", documentID: "doc-5"))
        await #expect(throws: ActivityFailure.self) { try await parked.query(NoSuchQuery.self) }
    }
}

enum NoSuchQuery: QueryDeclaration {
    static let name = "no_such_query"
    typealias Output = String
}
