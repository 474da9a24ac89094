import FlowContracts
import FlowCore
import FlowCoordinator
import Foundation

/// `document_onboarding`, the workflow the original application was built around: take a
/// document in, read it, then in parallel have a chat model analyse it and fine-tune the
/// organisation's model on it, evaluate the model, and sum it all up.
///
/// `process_document_upload` -> `parse_document` -> `storage_put` (the training set) ->
/// `analyze_document_content` (openai) ‖ `train_organizational_model` (ml) ->
/// `evaluate_model` (ml) -> summary.
///
/// A branch whose step fails for good parks the workflow; the other branch still runs to
/// its end, so after a replay only the failed step is left to do.
///
/// With `require_approval`, a person decides whether the organisation's model learns from
/// the document: the analysis runs first, then the workflow waits for the signal
/// `approve_training` or `reject_training` (`flow workflow signal ID approve_training
/// --input '{"approver": "ada"}'`), at most `approval_timeout_seconds` (a day by default),
/// and fine-tunes only when approved. A rejection or no decision in time ends it without a
/// model, saying which.
public struct DocumentOnboarding: Workflow {
    public static let name = "document_onboarding"

    /// The query `progress`: the stage the workflow is at, and the decision on training.
    public enum Progress: QueryDeclaration {
        public static let name = "progress"
        public struct Output: Codable, Sendable, Equatable {
            /// `reading`, `analysing and training`, `analysing`, `waiting for approval`,
            /// `training`, `storing the report`, or `done`.
            public var stage: String
            public var documentID: String?
            /// `approved`, `rejected` or `timed_out`, once decided.
            public var approval: String?

            public init(stage: String, documentID: String? = nil, approval: String? = nil) {
                self.stage = stage
                self.documentID = documentID
                self.approval = approval
            }
        }
    }

    /// The signal that lets training go ahead.
    public enum ApproveTraining: SignalDeclaration {
        public static let name = "approve_training"
        public struct Input: Codable, Sendable, Equatable {
            public var approver: String
            public init(approver: String) { self.approver = approver }
        }
    }

    /// The signal that stops it, with why.
    public enum RejectTraining: SignalDeclaration {
        public static let name = "reject_training"
        public struct Input: Codable, Sendable, Equatable {
            public var reason: String
            public init(reason: String) { self.reason = reason }
        }
    }

    public struct Input: Codable, Sendable {
        /// The document, relative to the data folder of the default worker.
        public var path: String?
        /// Or a blob id from `storage_put`.
        public var blobID: String?
        public var documentID: String?
        /// The base model folder, relative to the ML worker's data folder.
        public var baseModel: String?
        /// LoRA and training settings for the ML actor.
        public var lora: JSONText?
        public var training: JSONText?
        /// The chat model of the analysis.
        public var analysisModel: String?
        /// Wait for `approve_training` (or `reject_training`) after the analysis, before training.
        public var requireApproval: Bool?
        /// How long the approval may take; a day when not given.
        public var approvalTimeoutSeconds: Int?

        public init(
            path: String? = nil, blobID: String? = nil, documentID: String? = nil, baseModel: String? = nil, lora: JSONText? = nil, training: JSONText? = nil,
            analysisModel: String? = nil, requireApproval: Bool? = nil, approvalTimeoutSeconds: Int? = nil
        ) {
            self.path = path
            self.blobID = blobID
            self.documentID = documentID
            self.baseModel = baseModel
            self.lora = lora
            self.training = training
            self.analysisModel = analysisModel
            self.requireApproval = requireApproval
            self.approvalTimeoutSeconds = approvalTimeoutSeconds
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public struct Document: Codable, Sendable, Equatable {
            public var documentID: String
            public var source: String
            public var format: String
            public var characters: Int
            public var words: Int
            public var sections: Int
            public var chunks: Int
            public var datasetBlobID: String
        }

        public struct Model: Codable, Sendable, Equatable {
            public var jobID: String
            public var adapterPath: String
            public var trainingSteps: Int
            public var finalLoss: Double
            public var evalLoss: Double
            public var perplexity: Double
        }

        /// What became of the approval, when the input asked for one.
        public struct Approval: Codable, Sendable, Equatable {
            /// `approved`, `rejected` or `timed_out`.
            public var decision: String
            public var approver: String?
            public var reason: String?
        }

        public var document: Document
        public var analysis: AnalyzeDocumentContent.Output
        /// The organisation's model fine-tuned on the document; nil when training was not approved.
        public var model: Model?
        public var approval: Approval?
        /// The blob holding this output as JSON (`storage_get`), kept beyond the workflow's
        /// result. Runs that started before the report was stored have none.
        public var reportBlobID: String?
    }

    /// The base model when the input names none.
    public static let defaultBaseModel = "models/base"

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
        let progress = WorkflowState(Progress.Output(stage: "reading"))
        context.onQuery(Progress.self) { progress.value }
        let upload = try await context.execute(
            ProcessDocumentUpload.self, .init(path: input.path, blobID: input.blobID, documentID: input.documentID),
            options: .init(startToCloseTimeout: .seconds(120))
        )
        let parsed = try await context.execute(ParseDocument.self, .init(textBlobID: upload.textBlobID))
        // The training set: one JSON line per chunk, the format the ML actor reads.
        let lines = try parsed.chunks.map { chunk in
            try FlowJSON.encodeText(["text": chunk.text])
        }
        let dataset = try await context.execute(StoragePut.self, .init(text: lines.joined(separator: "\n") + "\n"))

        let jobID = "onboarding-\(upload.documentID)"
        let baseModel = input.baseModel ?? Self.defaultBaseModel
        let document = Output.Document(
            documentID: upload.documentID, source: upload.source, format: upload.format.rawValue, characters: upload.characters,
            words: upload.words, sections: parsed.sectionCount, chunks: parsed.chunkCount, datasetBlobID: dataset.blobID
        )
        let analysisInput = AnalyzeDocumentContent.Input(documentID: upload.documentID, text: upload.text, model: input.analysisModel)
        let train = {
            try await Self.train(context: context, jobID: jobID, baseModel: baseModel, dataset: dataset.blobID, input: input)
        }

        // Filed for lists (`flow workflow list --where 'document_format = "pdf"'`); added
        // after runs were recorded, so behind a patch like the report below.
        if try context.patched("file-search-attributes") {
            try context.upsertSearchAttributes([
                "document_format": .text(upload.format.rawValue), "document_words": .number(Double(upload.words)), "base_model": .text(baseModel),
            ])
        }
        progress.update { $0.documentID = upload.documentID }
        var output = try await Self.analyseAndTrain(context: context, input: input, analysisInput: analysisInput, document: document, progress: progress, train: train)
        // A step added after runs of this workflow were recorded: those take the old path
        // and end here, new ones store the report (docs/workflows.md, "Changing workflow code").
        if try context.patched("store-onboarding-report") {
            progress.update { $0.stage = "storing the report" }
            output.reportBlobID = try await context.execute(StoragePut.self, .init(text: try FlowJSON.encodeText(output))).blobID
        }
        progress.update { $0.stage = "done" }
        return output
    }

    private static func analyseAndTrain(
        context: WorkflowContext, input: Input, analysisInput: AnalyzeDocumentContent.Input, document: Output.Document, progress: WorkflowState<Progress.Output>,
        train: () async throws -> Output.Model
    ) async throws -> Output {
        guard input.requireApproval == true else {
            // The analysis and the training side by side.
            progress.update { $0.stage = "analysing and training" }
            async let analysis = context.execute(AnalyzeDocumentContent.self, analysisInput)
            let model = try await train()
            return Output(document: document, analysis: try await analysis, model: model, approval: nil)
        }
        // A person reads the analysis, then decides whether the model learns from the document.
        progress.update { $0.stage = "analysing" }
        let analysis = try await context.execute(AnalyzeDocumentContent.self, analysisInput)
        progress.update { $0.stage = "waiting for approval" }
        let timeout = Duration.seconds(input.approvalTimeoutSeconds ?? 86_400)
        guard let decision = try await context.receive(oneOf: [ApproveTraining.self, RejectTraining.self], timeout: timeout) else {
            context.logger.info("no training decision in time; not training")
            progress.update { $0.approval = "timed_out" }
            return Output(document: document, analysis: analysis, model: nil, approval: .init(decision: "timed_out"))
        }
        if decision.is(RejectTraining.self) {
            let reason = try decision.input(as: RejectTraining.self).reason
            progress.update { $0.approval = "rejected" }
            return Output(document: document, analysis: analysis, model: nil, approval: .init(decision: "rejected", reason: reason))
        }
        let approver = try decision.input(as: ApproveTraining.self).approver
        progress.update { $0.approval = "approved"; $0.stage = "training" }
        return Output(document: document, analysis: analysis, model: try await train(), approval: .init(decision: "approved", approver: approver))
    }

    /// Fine-tunes the organisation's model on the training set, then evaluates the adapter.
    private static func train(context: WorkflowContext, jobID: String, baseModel: String, dataset: String, input: Input) async throws -> Output.Model {
        let trained = try await context.execute(
            TrainOrganizationalModel.self,
            .init(jobID: jobID, baseModel: baseModel, dataset: dataset, lora: input.lora, training: input.training),
            options: .init(heartbeatTimeout: .seconds(600))
        )
        let evaluation = try await context.execute(EvaluateModel.self, .init(jobID: jobID, baseModel: baseModel, adapterPath: trained.adapterPath, dataset: dataset))
        return Output.Model(
            jobID: jobID, adapterPath: trained.adapterPath, trainingSteps: trained.steps, finalLoss: trained.finalLoss,
            evalLoss: evaluation.evalLoss, perplexity: evaluation.perplexity
        )
    }
}

/// The workflows `flow coordinator` runs.
public enum ApplicationWorkflows {
    public static func registry() -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(DocumentOnboarding())
        registry.register(EchoChain())
        registry.register(EchoFanOut())
        registry.register(EchoSignals())
        return registry
    }
}
