import FlowContracts
import FlowCore
import FlowDefaultActivities
import FlowML
import FlowMLActivities
import FlowRuntime
import FlowTesting
import Foundation
import Testing

@Suite("the ML actor through ml-queue", .serialized)
struct MLActorTests {
    func harness(concurrency: Int = 1, holdLimit: Duration = .seconds(600), progressInterval: Duration = .zero) async throws -> TestWorkerHarness {
        let options = TrainingJobOptions(workerID: "test-ml-worker", deliveryHoldLimit: holdLimit, busyRetryDelay: .seconds(1), progressInterval: progressInterval)
        let harness = try await TestWorkerHarness(queue: .ml, concurrency: concurrency) { _, _, folder in
            MLActivities.registry(dataFolder: DataFolder(folder), options: options)
        }
        try MLJobFixtures.prepare(harness.dataFolder)
        return harness
    }

    func job(_ harness: TestWorkerHarness, _ jobID: String, messageID: String = UUID().uuidString) async throws -> TrainingJob {
        try await harness.send(GetTrainingJob.name, input: #"{"job_id": "\#(jobID)"}"#, messageID: messageID, queue: .ml)
        let reply = try await harness.finalReply(to: messageID)
        return try #require(reply.output, "\(String(describing: reply.error))").decode(TrainingJob.self)
    }

    @Test("a training job runs through ml-queue with progress on the way, evaluates, and a duplicate is answered without training again")
    func trainAndEvaluate() async throws {
        let harness = try await harness()
        let input = #"{"job_id": "job-1", "base_model": "models/base", "dataset": "datasets/policy.jsonl", "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["all-linear"]}, "training": {"max_steps": 4, "save_steps": 2, "batch_size": 2, "learning_rate": 0.03}}"#
        try await harness.send("train_organizational_model", input: input, messageID: "train-job-1", queue: .ml)
        let reply = try await harness.finalReply(to: "train-job-1", timeout: .seconds(120))
        #expect(reply.status == .completed, "\(String(describing: reply.error))")
        let output = try #require(reply.output).decode(TrainOrganizationalModel.Output.self)
        #expect(output.steps == 4)
        #expect(output.adapterPath == "training/job-1")
        let progress = await harness.replies(to: "train-job-1").filter { $0.status == .progress }
        #expect(progress.count == 4, "one heartbeat per step")
        #expect(progress.last?.progress?.text.contains(#""checkpoint":"training\/job-1\/checkpoint-4""#) == true || progress.last?.progress?.text.contains("checkpoint-4") == true)
        let adapter = harness.dataFolder.appendingPathComponent("training/job-1/adapter_model.safetensors")
        #expect(FileManager.default.fileExists(atPath: adapter.path))

        let evaluation = #"{"job_id": "job-1", "base_model": "models/base", "adapter_path": "training/job-1", "dataset": "datasets/policy.jsonl"}"#
        try await harness.send("evaluate_model", input: evaluation, messageID: "eval-job-1", queue: .ml)
        let evaluated = try await harness.finalReply(to: "eval-job-1", timeout: .seconds(60))
        #expect(evaluated.status == .completed, "\(String(describing: evaluated.error))")
        let figures = try #require(evaluated.output).decode(EvaluateModel.Output.self)
        #expect(figures.samples == 6)
        #expect(figures.perplexity > 1)
        #expect(try #require(figures.baseEvalLoss) > figures.evalLoss, "the adapter learned the data it was trained on")

        let generation = #"{"base_model": "models/base", "adapter_path": "training/job-1", "prompt": "Policy 3:", "max_new_tokens": 8, "seed": 1}"#
        try await harness.send(GenerateText.name, input: generation, messageID: "generate-job-1", queue: .ml)
        let generated = try await harness.finalReply(to: "generate-job-1", timeout: .seconds(60))
        let text = try #require(generated.output, "\(String(describing: generated.error))").decode(GenerateText.Output.self)
        #expect(text.promptTokens > 0)
        #expect(text.generatedTokens == 8 || text.finishReason == "eos")
        try await harness.send(GenerateText.name, input: #"{"base_model": "models/base", "adapter_path": "training/nothing", "prompt": "x"}"#, messageID: "generate-bad", queue: .ml)
        #expect(try await harness.finalReply(to: "generate-bad").error?.type == "InvalidAdapter")
        // A chat: its prompt is the template's rendering with the generation prompt (ChatML
        // here, the folder has no template of its own).
        let chat = #"{"base_model": "models/base", "messages": [{"role": "user", "content": "Policy 3?"}], "max_new_tokens": 4}"#
        try await harness.send(GenerateText.name, input: chat, messageID: "generate-chat", queue: .ml)
        let answered = try await harness.finalReply(to: "generate-chat", timeout: .seconds(60))
        let chatOutput = try #require(answered.output, "\(String(describing: answered.error))").decode(GenerateText.Output.self)
        let tokenizer = try ModelTokenizer(folder: harness.dataFolder.appendingPathComponent("models/base"))
        #expect(chatOutput.promptTokens == tokenizer.encode("<|im_start|>user\nPolicy 3?<|im_end|>\n<|im_start|>assistant\n").count)
        try await harness.send(GenerateText.name, input: #"{"base_model": "models/base", "prompt": "x", "messages": [{"role": "user", "content": "y"}]}"#, messageID: "generate-both", queue: .ml)
        let both = try await harness.finalReply(to: "generate-both")
        #expect(both.error?.type == "InvalidInput" && both.error?.message.contains("not both") == true, "\(String(describing: both.error))")

        let modified = try FileManager.default.attributesOfItem(atPath: adapter.path)[.modificationDate] as? Date
        try await harness.send("train_organizational_model", input: input, messageID: "train-job-1", queue: .ml)
        var finals: [ActivityReply] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while finals.count < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            finals = await harness.replies(to: "train-job-1").filter { $0.status == .completed }
        }
        #expect(finals.count == 2)
        #expect(finals.allSatisfy { $0.output == reply.output })
        #expect(try FileManager.default.attributesOfItem(atPath: adapter.path)[.modificationDate] as? Date == modified, "a duplicate must not train again")
        await harness.shutdown()
    }

    @Test("bad requests (a missing model folder, an unknown target module, a malformed dataset line) fail at once, non-retryably, naming the problem")
    func badRequest() async throws {
        let harness = try await harness()
        try await harness.send("train_organizational_model", input: #"{"job_id": "job-2", "base_model": "models/missing", "dataset": "datasets/policy.jsonl"}"#, messageID: "train-job-2", queue: .ml)
        let reply = try await harness.finalReply(to: "train-job-2")
        #expect(reply.status == .failed)
        #expect(reply.error?.type == "ModelNotFound")
        #expect(reply.error?.message.contains("models/missing") == true)
        try await harness.send("train_organizational_model", input: #"{"job_id": "job-3", "base_model": "models/base", "dataset": "datasets/policy.jsonl", "lora": {"target_modules": ["no_such_proj"]}}"#, messageID: "train-job-3", queue: .ml)
        let unknownModule = try await harness.finalReply(to: "train-job-3")
        #expect(unknownModule.status == .failed)
        #expect(unknownModule.error?.message.contains("no_such_proj") == true)
        try #"{"text": "a good line"}\#n{"text": "a line cut short"#.write(to: harness.dataFolder.appendingPathComponent("datasets/broken.jsonl"), atomically: true, encoding: .utf8)
        try await harness.send("train_organizational_model", input: #"{"job_id": "job-4", "base_model": "models/base", "dataset": "datasets/broken.jsonl"}"#, messageID: "train-job-4", queue: .ml)
        let malformed = try await harness.finalReply(to: "train-job-4")
        #expect(malformed.status == .failed)
        #expect(malformed.error?.type == "InvalidDataset")
        #expect(malformed.error?.message.contains("line 2") == true, "\(String(describing: malformed.error))")
        #expect(try await job(harness, "job-4").state == .failed)
        await harness.shutdown()
    }

    @Test("a job longer than a delivery's hold limit checkpoints, continues in fresh deliveries, and ends with the adapter of an uninterrupted run")
    func holdLimitContinuation() async throws {
        let harness = try await harness(holdLimit: .zero)
        let training = #"{"max_steps": 5, "save_steps": 100, "batch_size": 2, "learning_rate": 0.03, "seed": 7}"#
        try await harness.send(TrainOrganizationalModel.name, input: MLJobFixtures.trainingInput(jobID: "sliced", training: training), messageID: "train-sliced", queue: .ml)
        let reply = try await harness.finalReply(to: "train-sliced", timeout: .seconds(120))
        #expect(reply.status == .completed, "\(String(describing: reply.error))")
        let output = try #require(reply.output).decode(TrainOrganizationalModel.Output.self)
        #expect(output.steps == 5)
        #expect(output.bestLoss.map { $0 <= output.finalLoss } == true)
        #expect((output.tokensPerSecond ?? 0) > 0)
        let progress = await harness.replies(to: "train-sliced").filter { $0.status == .progress }
        #expect(progress.count == 5, "one heartbeat per step, whichever delivery ran it")
        let record = try await job(harness, "sliced")
        #expect(record.state == .completed)
        #expect(record.deliveries == 5, "each delivery trains one step, then hands the job on")
        #expect(harness.worker.statistics.count(.deferred) == 4)
        let adapter = try LoRAAdapter(folder: harness.dataFolder.appendingPathComponent("training/sliced"))
        MLJobFixtures.expectSame(adapter, try MLJobFixtures.uninterruptedAdapter(harness.dataFolder, training: training))
        #expect(try await harness.requester.inspectQueue(harness.names.deadLetterQueue).messageCount == 0)
        await harness.shutdown()
    }

    @Test("cancelling a running job stops it after its step with a final checkpoint, answers it as cancelled and dead-letters nothing")
    func cancelRunningJob() async throws {
        let harness = try await harness(concurrency: 2)
        let input = MLJobFixtures.trainingInput(jobID: "long", training: #"{"max_steps": 100000, "save_steps": 100000, "batch_size": 1}"#)
        try await harness.send(TrainOrganizationalModel.name, input: input, messageID: "train-long", queue: .ml)
        let deadline = ContinuousClock.now + .seconds(60)
        while await harness.replies(to: "train-long").isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await job(harness, "long").state == .running)

        try await harness.send(CancelTrainingJob.name, input: #"{"job_id": "long"}"#, messageID: "cancel-long", queue: .ml)
        let cancelReply = try await harness.finalReply(to: "cancel-long")
        #expect(try #require(cancelReply.output).decode(TrainingJob.self).cancelRequested)
        let reply = try await harness.finalReply(to: "train-long", timeout: .seconds(60))
        #expect(reply.status == .failed)
        #expect(reply.error?.kind == .cancelled)
        #expect(reply.error?.message.contains("was cancelled at step") == true, "\(String(describing: reply.error))")

        let record = try await job(harness, "long")
        #expect(record.state == .cancelled)
        #expect(record.checkpoints == ["training/long/checkpoint-\(record.step)"], "a final checkpoint of the step it stopped after")
        try await harness.send(ListTrainingJobs.name, input: #"{"state": "cancelled"}"#, messageID: "list-cancelled", queue: .ml)
        let listed = try #require(try await harness.finalReply(to: "list-cancelled").output).decode(ListTrainingJobs.Output.self)
        #expect(listed.jobs.map(\.jobID) == ["long"])

        // The same job asked for again stays cancelled, answered at once.
        try await harness.send(TrainOrganizationalModel.name, input: input, messageID: "train-long-again", queue: .ml)
        #expect(try await harness.finalReply(to: "train-long-again").error?.kind == .cancelled)
        #expect(try await harness.requester.inspectQueue(harness.names.deadLetterQueue).messageCount == 0)
        await harness.shutdown()
    }

    @Test("a second training request while the worker trains is handed back to the queue and runs once the first is over")
    func oneJobAtATime() async throws {
        let harness = try await harness(concurrency: 2)
        try await harness.send(TrainOrganizationalModel.name, input: MLJobFixtures.trainingInput(jobID: "first", training: #"{"max_steps": 100000, "batch_size": 1}"#), messageID: "train-first", queue: .ml)
        let deadline = ContinuousClock.now + .seconds(60)
        while await harness.replies(to: "train-first").isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await harness.send(TrainOrganizationalModel.name, input: MLJobFixtures.trainingInput(jobID: "second", training: #"{"max_steps": 2, "batch_size": 1}"#), messageID: "train-second", queue: .ml)
        while harness.worker.statistics.count(.deferred) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(harness.worker.statistics.count(.deferred) >= 1)
        #expect(await harness.replies(to: "train-second").isEmpty, "the second job waits while the first trains")

        try await harness.send(CancelTrainingJob.name, input: #"{"job_id": "first"}"#, messageID: "cancel-first", queue: .ml)
        let second = try await harness.finalReply(to: "train-second", timeout: .seconds(60))
        #expect(second.status == .completed, "\(String(describing: second.error))")
        #expect(try await harness.finalReply(to: "train-first").error?.kind == .cancelled)
        await harness.shutdown()
    }

    @Test("asking for a job that does not exist fails non-retryably, naming it")
    func unknownJob() async throws {
        let harness = try await harness()
        try await harness.send(GetTrainingJob.name, input: #"{"job_id": "nobody"}"#, messageID: "get-nobody", queue: .ml)
        let reply = try await harness.finalReply(to: "get-nobody")
        #expect(reply.error?.type == "JobNotFound")
        #expect(reply.error?.message.contains("nobody") == true)
        _ = try await harness.deadLetters(count: 1)
        await harness.shutdown()
    }

    @Test("the declarations the command line knows are exactly the activities the ML worker registers")
    func declarationsMatchRegistry() {
        let registry = MLActivities.registry(dataFolder: DataFolder(FileManager.default.temporaryDirectory), options: TrainingJobOptions(workerID: "test"))
        #expect(registry.names == MLContracts.all.map { $0.name }.sorted())
        #expect(MLContracts.all.allSatisfy { $0.queue == .ml })
    }

    @Test("progress comes at a steady rate however fast the steps are: the first step, each checkpoint and the last step always report")
    func progressRate() async throws {
        let harness = try await harness(progressInterval: .seconds(3600))
        let input = MLJobFixtures.trainingInput(jobID: "quick", training: #"{"max_steps": 12, "save_steps": 5, "batch_size": 1}"#)
        try await harness.send(TrainOrganizationalModel.name, input: input, messageID: "train-quick", queue: .ml)
        #expect(try await harness.finalReply(to: "train-quick", timeout: .seconds(120)).status == .completed)
        let steps = try await harness.replies(to: "train-quick").filter { $0.status == .progress }.map { reply in
            try #require(reply.progress).decode(Step.self).step
        }
        #expect(steps == [1, 5, 10, 12])
        await harness.shutdown()
    }

    struct Step: Decodable { var step: Int }
}
