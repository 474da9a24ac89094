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
    func harness() async throws -> TestWorkerHarness {
        let harness = try await TestWorkerHarness(queue: .ml, concurrency: 1) { _, _, folder in MLActivities.registry(dataFolder: DataFolder(folder)) }
        var shape = ModelFactory.Shape(vocabulary: 600)
        shape.hidden = 32
        shape.intermediate = 48
        try ModelFactory.writeRandomLlama(
            to: harness.dataFolder.appendingPathComponent("models/base"), shape: shape,
            tokenizer: Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json")
        )
        let lines = (0..<6).map { #"{"text": "Policy \#($0): we keep customer records for seven years and review them yearly."}"# }
        try FileManager.default.createDirectory(at: harness.dataFolder.appendingPathComponent("datasets"), withIntermediateDirectories: true)
        try lines.joined(separator: "\n").write(to: harness.dataFolder.appendingPathComponent("datasets/policy.jsonl"), atomically: true, encoding: .utf8)
        return harness
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

    @Test("a request naming a missing model folder fails at once, non-retryably, naming the folder")
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
        await harness.shutdown()
    }
}
