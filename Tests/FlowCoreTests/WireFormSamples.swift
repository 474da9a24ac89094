import FlowContracts
import FlowCore
import Foundation

/// One value of every type that crosses the wire or a step's identity, with every
/// optional field set, so that each key the type can write is written.
enum WireFormSamples {
    struct Sample: Sendable {
        var name: String
        var encode: @Sendable () throws -> String
        /// Decodes the text and encodes the result again: a round trip that loses a field
        /// or cannot read a key gives different text.
        var roundTrip: @Sendable (String) throws -> String
    }

    static func sample<Value: Codable & Sendable>(_ name: String, _ value: Value) -> Sample {
        Sample(
            name: name,
            encode: { try JSONText(encoding: value).text },
            roundTrip: { text in try JSONText(encoding: try JSONText(storedText: text).decode(Value.self)).text }
        )
    }

    static let json = try! JSONText(validating: #"{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]}"#)
    static let failure = ActivityFailure(kind: .invalidInput, message: "bad field", retryable: false)
    static let usage = ModelUsage(promptTokens: 1, completionTokens: 2, costUSD: 0.5, calls: 3, cachedCalls: 1)
    /// `Analysis` has no public initialiser: workers only decode it from a model's answer.
    static let analysis = try! JSONText(validating: #"{"summary":"s","themes":["t"],"risks":[{"description":"r","severity":"low"}],"decisions":["d"],"open_questions":["q"]}"#).decode(AnalyzeDocumentContent.Analysis.self)
    static let trainInput = TrainOrganizationalModel.Input(jobID: "job-1", baseModel: "models/tiny", dataset: "sha256:abc", lora: json, training: json)
    static let trainOutput = TrainOrganizationalModel.Output(jobID: "job-1", adapterPath: "adapters/job-1", steps: 4, finalLoss: 1.5, bestLoss: 1.25, tokensPerSecond: 100, trainingSeconds: 2)

    static var trainingJob: TrainingJob {
        var job = TrainingJob(jobID: "job-1", state: .completed, request: trainInput, createdAt: Date(timeIntervalSince1970: 1_700_000_000.25))
        job.messageID = "m-1"
        job.workerID = "w-1"
        job.step = 4
        job.maximumSteps = 8
        job.loss = 1.5
        job.bestLoss = 1.25
        job.learningRate = 0.001
        job.tokensPerSecond = 99.5
        job.tokens = 400
        job.trainingSeconds = 3
        job.deliveries = 1
        job.checkpoints = ["training/job-1/checkpoint-4"]
        job.cancelRequested = true
        job.result = trainOutput
        job.error = failure
        return job
    }

    static let all: [Sample] = [
        // Envelopes and commands.
        sample("ActivityReply", ActivityReply(status: .completed, activity: "echo", messageID: "m-1", attempt: 2, output: json, error: failure, progress: json)),
        sample("WorkflowCommand.Start", WorkflowCommand.Start(workflow: "echo_chain", workflowID: "w-1", input: json)),
        sample("WorkflowCommand.Cancel", WorkflowCommand.Cancel(workflowID: "w-1", reason: "no longer needed")),
        sample("WorkflowCommand.AddSchedule", WorkflowCommand.AddSchedule(name: "nightly", workflow: "echo_chain", input: json, everySeconds: 60, cron: "0 2 * * *")),
        sample("WorkflowCommand.RemoveSchedule", WorkflowCommand.RemoveSchedule(name: "nightly")),
        sample("WorkflowResult", WorkflowResult(status: .failed, workflow: "echo_chain", workflowID: "w-1", output: json, error: failure)),
        sample("CommandAnswer", CommandAnswer(accepted: true, command: "flow.workflow.cancel", message: "cancelled")),
        sample("RetryPolicy.WireForm", RetryPolicy(maximumAttempts: 3, nonRetryableErrorTypes: ["InvalidInput"]).wireForm),
        // The default actor.
        sample("HealthCheck.Output", HealthCheck.Output(status: "ok", problems: ["p"], broker: "rabbit", queues: [.init(name: "default-queue", ready: 1, consumers: 2, problem: "none")], dataFolder: "/data", freeBytes: 10, writable: true, workerID: "w-1")),
        sample("ParseDocument.Input", ParseDocument.Input(text: "t", textBlobID: "sha256:abc", chunkSize: 100, chunkOverlap: 10)),
        sample("ParseDocument.Output", ParseDocument.Output(characters: 5, sectionCount: 1, chunkCount: 1, sections: [.init(title: "T", start: 0, characters: 5)], chunks: [.init(index: 0, start: 0, characters: 5, section: 0, text: "hello")])),
        sample("CleanupStorage.Input", CleanupStorage.Input(retentionDays: 1.5, dryRun: true, areas: [.checkpoints])),
        sample("CleanupStorage.Output", CleanupStorage.Output(dryRun: true, removed: [.init(path: "a/b", bytes: 3)], freedBytes: 3)),
        sample("DelegateTraining.Input", DelegateTraining.Input(jobID: "job-1", baseModel: "models/tiny", dataset: "sha256:abc", lora: json, training: json, replyTo: "replies")),
        sample("DelegateTraining.Output", DelegateTraining.Output(jobID: "job-1", queue: "ml-queue", messageID: "m-1")),
        sample("StoragePut.Input", StoragePut.Input(text: "t", base64: "dA==")),
        sample("StoragePut.Output", StoragePut.Output(blobID: "sha256:abc", size: 1)),
        sample("StorageGet.Output", StorageGet.Output(blobID: "sha256:abc", size: 1, base64: "dA==", text: "t")),
        sample("StorageDelete.Output", StorageDelete.Output(blobID: "sha256:abc", deleted: true)),
        sample("BlobReference", BlobReference(blobID: "sha256:abc")),
        sample("ProcessDocumentUpload.Input", ProcessDocumentUpload.Input(path: "a.txt", blobID: "sha256:abc", fileName: "a.txt", documentID: "d-1", format: .text)),
        sample("ProcessDocumentUpload.Output", ProcessDocumentUpload.Output(documentID: "d-1", source: "a.txt", format: .text, sizeBytes: 3, characters: 3, words: 1, lines: 1, metadata: ["pageCount": "1", "page_count": "1"], textBlobID: "sha256:abc", text: "abc", textTruncated: false)),
        // The ML actor.
        sample("TrainOrganizationalModel.Input", trainInput),
        sample("TrainOrganizationalModel.Output", trainOutput),
        sample("EvaluateModel.Input", EvaluateModel.Input(jobID: "job-1", baseModel: "models/tiny", adapterPath: "adapters/job-1", dataset: "sha256:abc")),
        sample("EvaluateModel.Output", EvaluateModel.Output(jobID: "job-1", evalLoss: 1.5, perplexity: 4.5, samples: 3, baseEvalLoss: 2, basePerplexity: 7.5)),
        sample("ListTrainingJobs.Input", ListTrainingJobs.Input(state: .running, limit: 5)),
        sample("GetTrainingJob.Input", GetTrainingJob.Input(jobID: "job-1")),
        sample("GenerateText.Input", GenerateText.Input(baseModel: "models/tiny", adapterPath: "adapters/job-1", prompt: "p", messages: [.init(role: "user", content: "c")], maximumNewTokens: 8, temperature: 0.5, topP: 0.9, seed: 7)),
        sample("GenerateText.Output", GenerateText.Output(text: "t", promptTokens: 1, generatedTokens: 2, finishReason: "length", tokensPerSecond: 3.5)),
        // The OpenAI actor.
        sample("ModelUsage", usage),
        sample("AnalyzeDocumentContent.Input", AnalyzeDocumentContent.Input(documentID: "d-1", text: "t", model: "gpt-4o-mini", maxPartCharacters: 100, useCache: true)),
        sample("AnalyzeDocumentContent.Output", AnalyzeDocumentContent.Output(documentID: "d-1", analysis: analysis, model: "gpt-4o-mini", parts: 1, promptVersions: ["analyze_document@1"], usage: usage)),
        sample("ResearchAndSynthesize.Input", ResearchAndSynthesize.Input(topic: "t", sources: [.init(title: "s", text: "x")], maxQuestions: 2, model: "m", useCache: false)),
        sample("ResearchAndSynthesize.Output", ResearchAndSynthesize.Output(topic: "t", answers: [.init(question: "q", answer: "a", sources: ["s"])], synthesis: "s", keyPoints: ["k"], gaps: ["g"], model: "m", promptVersions: ["v"], usage: usage)),
        sample("CatchballExchange.Input", CatchballExchange.Input(topic: "t", context: "c", conversation: [.init(kind: "proposal", content: "x")], model: "m", useCache: true)),
        sample("CatchballExchange.Output", CatchballExchange.Output(round: 1, proposal: "p", feedback: "f", revisedProposal: "r", conversation: [.init(kind: "proposal", content: "x")], model: "m", promptVersions: ["v"], usage: usage)),
        sample("SynthesizeWisdom.Input", SynthesizeWisdom.Input(insights: [.init(source: "s", text: "t")], maxPrinciples: 3, model: "m", useCache: true)),
        sample("SynthesizeWisdom.Output", SynthesizeWisdom.Output(principles: [.init(principle: "p", evidence: [.init(source: "s", observation: "o")])], model: "m", promptVersions: ["v"], usage: usage)),
    ]

    /// Samples holding a date, kept apart: dates were written as seconds since 2001 on
    /// the wire and ISO 8601 in `job.json` before one convention; both still read.
    static let dated: [Sample] = [
        sample("TrainingJob", trainingJob),
        sample("ListTrainingJobs.Output", ListTrainingJobs.Output(jobs: [trainingJob])),
        sample("StorageList.Output", StorageList.Output(blobs: [BlobEntry(blobID: "sha256:abc", size: 1, createdAt: Date(timeIntervalSince1970: 1_700_000_000.5))], totalBytes: 1)),
    ]
}
