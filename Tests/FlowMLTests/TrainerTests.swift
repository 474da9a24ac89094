import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("the LoRA trainer: checkpoints, resume, schedule, datasets")
struct TrainerTests {
    let fixtures = Repository.file("Tests/FlowMLTests/Fixtures")

    /// Sequences over the tiny model's 64-token vocabulary, with a pattern to learn.
    func examples() -> [TokenizedExample] {
        (0..<12).map { index in
            let ids = (0..<10).map { (index * 3 + $0 * 7) % 64 }
            return TokenizedExample(ids: ids, labels: ids)
        }
    }

    func settings(steps: Int) -> TrainingSettings {
        var settings = TrainingSettings()
        settings.rank = 4
        settings.alpha = 8
        settings.targetModules = ["q_proj", "v_proj", "down_proj"]
        settings.learningRate = 1e-2
        settings.warmupSteps = 2
        settings.maximumSteps = steps
        settings.batchSize = 2
        settings.gradientAccumulation = 2
        settings.checkpointEvery = 2
        settings.keepCheckpoints = 2
        settings.seed = 7
        return settings
    }

    func folder(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("flow-trainer-\(name)-\(UUID().uuidString.prefix(8))")
    }

    @Test("a run stopped after a checkpoint and resumed goes on exactly as the uninterrupted run")
    func resumeEqualsUninterrupted() async throws {
        try await onOwnThread {
            let model = try LlamaModel(folder: fixtures.appendingPathComponent("tiny-llama"))
            let straight = folder("straight")
            let uninterrupted = try LoRATrainer(model: model, examples: examples(), settings: settings(steps: 6), output: straight, resume: false)
            try uninterrupted.train()
            let reference = uninterrupted.trainerState.losses
            #expect(reference.count == 6)
            // The newest two checkpoints are kept, and the final adapter is in the output folder.
            let kept = try FileManager.default.contentsOfDirectory(atPath: straight.path).filter { $0.hasPrefix("checkpoint-") }.sorted()
            #expect(kept == ["checkpoint-4", "checkpoint-6"])
            #expect(FileManager.default.fileExists(atPath: straight.appendingPathComponent("adapter_config.json").path))
            #expect(FileManager.default.fileExists(atPath: straight.appendingPathComponent("checkpoint-4/optimizer.safetensors").path))

            let interrupted = folder("interrupted")
            let first = try LoRATrainer(model: model, examples: examples(), settings: settings(steps: 6), output: interrupted, resume: false)
            let ending = try first.train(shouldStop: { first.trainerState.globalStep == 3 })
            #expect(first.trainerState.globalStep == 3)
            // A stop writes a checkpoint of the step it stopped after.
            guard case .stopped(let checkpoint) = ending else { Issue.record("the run did not stop: \(ending)"); return }
            #expect(checkpoint.lastPathComponent == "checkpoint-3")
            #expect(LoRATrainer.newestCheckpoint(in: interrupted)?.lastPathComponent == "checkpoint-3")
            // A checkpoint whose write was cut short (a kill mid-write) never counts.
            try FileManager.default.removeItem(at: interrupted.appendingPathComponent("checkpoint-3"))
            try FileManager.default.createDirectory(at: interrupted.appendingPathComponent(".checkpoint-3.partial"), withIntermediateDirectories: true)
            #expect(LoRATrainer.newestCheckpoint(in: interrupted)?.lastPathComponent == "checkpoint-2")

            let resumed = try LoRATrainer(model: model, examples: examples(), settings: settings(steps: 6), output: interrupted, resume: true)
            #expect(resumed.trainerState.globalStep == 2)
            try resumed.train()
            let losses = resumed.trainerState.losses
            #expect(losses.count == 6)
            // The same kernels, threads and state in one process: the same bits.
            #expect(losses == reference, "resumed \(losses) against \(reference)")
            #expect(resumed.currentAdapter.b == uninterrupted.currentAdapter.b)
            try? FileManager.default.removeItem(at: straight)
            try? FileManager.default.removeItem(at: interrupted)
        }
    }

    @Test("training lowers the loss, and its adapter starts as PEFT starts one (B zero, A within ±1/sqrt(in))")
    func learns() async throws {
        try await onOwnThread {
            let model = try LlamaModel(folder: fixtures.appendingPathComponent("tiny-llama"))
            var settings = settings(steps: 40)
            settings.checkpointEvery = 100
            settings.targetModules = ["all-linear"]
            settings.learningRate = 3e-2
            let output = folder("learns")
            let trainer = try LoRATrainer(model: model, examples: examples(), settings: settings, output: output, resume: false)
            let start = trainer.currentAdapter
            #expect(start.b.values.allSatisfy { $0.allSatisfy { $0 == 0 } })
            #expect(start.a["model.layers.0.mlp.down_proj"]!.allSatisfy { abs($0) <= 1 / Float(48).squareRoot() })
            try trainer.train()
            let losses = trainer.trainerState.losses
            let early: Float = losses.prefix(3).reduce(0, +) / 3
            let late: Float = losses.suffix(3).reduce(0, +) / 3
            #expect(late < early * 0.9, "\(losses)")
            try? FileManager.default.removeItem(at: output)
        }
    }

    @Test("the learning rate warms up linearly, then decays along a cosine to zero")
    func schedule() async throws {
        try await onOwnThread {
            var settings = TrainingSettings()
            settings.learningRate = 1e-3
            settings.warmupSteps = 10
            settings.maximumSteps = 110
            // Each is the rate times a factor rounded to Float: within an ulp of the product of
            // two roundings. cos(π) is -1 to within an ulp of Double, so the last is the rate
            // times at most 2⁻⁵³.
            func expectRate(_ step: Int, _ wanted: Float) {
                let rate = settings.learningRate(atStep: step)
                #expect(abs(rate - wanted) <= 2 * wanted.ulp, "step \(step): \(rate), wanted \(wanted)")
            }
            #expect(settings.learningRate(atStep: 0) == 0)
            expectRate(5, 5e-4)
            expectRate(10, 1e-3)
            expectRate(60, 5e-4)
            #expect(settings.learningRate(atStep: 110) <= 1e-3 * Float(Double.ulpOfOne))
        }
    }

    @Test("datasets of text, prompt and completion, and chat messages mask the labels where no loss applies")
    func datasets() async throws {
        try await onOwnThread {
            let tokenizer = ModelTokenizer(tokenizer: try Tokenizer(contentsOf: fixtures.appendingPathComponent("byte-level.tokenizer.json")))
            let lines = """
            {"text": "The board approved the plan."}
            {"prompt": "Question: growth? ", "completion": "Answer: twelve percent."}
            {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there"}]}
            """
            let dataset = try TrainingData.parse(lines, tokenizer: tokenizer, maximumLength: 256)
            #expect(dataset.renderedChatsAsChatML, "the byte-level tokenizer alone has no chat template")
            let examples = dataset.examples
            #expect(examples.count == 3)
            #expect(examples[0].labels == examples[0].ids)
            let promptLength = tokenizer.encode("Question: growth? ").count
            #expect(examples[1].labels.prefix(promptLength).allSatisfy { $0 == -100 })
            #expect(Array(examples[1].labels.dropFirst(promptLength)) == tokenizer.encode("Answer: twelve percent."))
            // With no template of its own the folder's chats are ChatML; the loss covers the
            // assistant's text and its <|im_end|>, not the newline after it.
            let assistant = tokenizer.encode("Hi there<|im_end|>")
            #expect(examples[2].ids == tokenizer.encode("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n"))
            #expect(Array(examples[2].labels.dropLast().suffix(assistant.count)) == assistant)
            #expect(examples[2].labels.last == -100)
            #expect(examples[2].labels.dropLast(assistant.count + 1).allSatisfy { $0 == -100 })
            #expect(throws: ModelError.self) { try TrainingData.parse("{\"other\": 1}", tokenizer: tokenizer, maximumLength: 8) }
        }
    }

    @Test("two runs with the same seed end with identical adapters (the gradient norm sums in a fixed order)")
    func reproducible() async throws {
        try await onOwnThread {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-reproducible-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: folder) }
            try MLJobFixtures.prepare(folder)
            let training = #"{"max_steps": 60, "batch_size": 1, "learning_rate": 0.01, "seed": 3}"#
            let first = try MLJobFixtures.uninterruptedAdapter(folder, training: training)
            let second = try MLJobFixtures.uninterruptedAdapter(folder, training: training)
            #expect(first.a == second.a)
            #expect(first.b == second.b)
        }
    }
}
