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
public struct DocumentOnboarding: Workflow {
    public static let name = "document_onboarding"

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

        public init(path: String? = nil, blobID: String? = nil, documentID: String? = nil, baseModel: String? = nil, lora: JSONText? = nil, training: JSONText? = nil, analysisModel: String? = nil) {
            self.path = path
            self.blobID = blobID
            self.documentID = documentID
            self.baseModel = baseModel
            self.lora = lora
            self.training = training
            self.analysisModel = analysisModel
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

        public var document: Document
        public var analysis: AnalyzeDocumentContent.Output
        public var model: Model
    }

    /// The base model when the input names none.
    public static let defaultBaseModel = "models/base"

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
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
        async let analysis = context.execute(
            AnalyzeDocumentContent.self,
            .init(documentID: upload.documentID, text: upload.text, model: input.analysisModel)
        )
        let trained = try await context.execute(
            TrainOrganizationalModel.self,
            .init(jobID: jobID, baseModel: baseModel, dataset: dataset.blobID, lora: input.lora, training: input.training),
            options: .init(heartbeatTimeout: .seconds(600))
        )
        let evaluation = try await context.execute(
            EvaluateModel.self, .init(jobID: jobID, baseModel: baseModel, adapterPath: trained.adapterPath, dataset: dataset.blobID)
        )
        let analyzed = try await analysis

        return Output(
            document: .init(
                documentID: upload.documentID, source: upload.source, format: upload.format.rawValue, characters: upload.characters,
                words: upload.words, sections: parsed.sectionCount, chunks: parsed.chunkCount, datasetBlobID: dataset.blobID
            ),
            analysis: analyzed,
            model: .init(
                jobID: jobID, adapterPath: trained.adapterPath, trainingSteps: trained.steps, finalLoss: trained.finalLoss,
                evalLoss: evaluation.evalLoss, perplexity: evaluation.perplexity
            )
        )
    }
}

/// The workflows `flow coordinator` runs.
public enum ApplicationWorkflows {
    public static func registry() -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(DocumentOnboarding())
        registry.register(EchoChain())
        return registry
    }
}
