import FlowCore
import FlowML
import FlowTesting
import Foundation
import Testing

/// A small random Llama and a dataset in a data folder, for the ML actor's tests, and the
/// adapter an uninterrupted in-process run of the same settings ends with.
enum MLJobFixtures {
    static func prepare(_ dataFolder: URL) throws {
        var shape = ModelFactory.Shape(vocabulary: 600)
        shape.hidden = 32
        shape.intermediate = 48
        try ModelFactory.writeRandomLlama(
            to: dataFolder.appendingPathComponent("models/base"), shape: shape,
            tokenizer: Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json")
        )
        let lines = (0..<6).map { #"{"text": "Policy \#($0): we keep customer records for seven years and review them yearly."}"# }
        try FileManager.default.createDirectory(at: dataFolder.appendingPathComponent("datasets"), withIntermediateDirectories: true)
        try lines.joined(separator: "\n").write(to: dataFolder.appendingPathComponent("datasets/policy.jsonl"), atomically: true, encoding: .utf8)
    }

    /// A `train_organizational_model` input on the fixtures; `training` is the JSON object
    /// of Transformers' settings.
    static func trainingInput(jobID: String, training: String) -> String {
        #"{"job_id": "\#(jobID)", "base_model": "models/base", "dataset": "datasets/policy.jsonl", "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}, "training": \#(training)}"#
    }

    /// The adapter of the same job trained in one go, in this process.
    static func uninterruptedAdapter(_ dataFolder: URL, training: String) throws -> LoRAAdapter {
        let model = try LlamaModel(folder: dataFolder.appendingPathComponent("models/base"))
        let tokenizer = try ModelTokenizer(folder: dataFolder.appendingPathComponent("models/base"))
        var merged = try #require(try JSONValue(parsing: training).objectValue)
        merged.merge(["r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]]) { _, new in new }
        let settings = try JSONText(.object(merged)).decode(TrainingSettings.self)
        let examples = try TrainingData.load(dataFolder.appendingPathComponent("datasets/policy.jsonl"), tokenizer: tokenizer, maximumLength: settings.maximumLength).examples
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("flow-reference-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: output) }
        let trainer = try LoRATrainer(model: model, examples: examples, settings: settings, output: output, resume: false)
        try trainer.train()
        return trainer.currentAdapter
    }

    /// Expects two adapters to hold the same weights, bit for bit: the runs compared use
    /// the same kernels (``MLWorkerProcessTests/sameKernels``), thread count, data and
    /// seeds, and training sums in a fixed order, so a resumed or handed-back job must end
    /// exactly where an uninterrupted one does.
    static func expectSame(_ adapter: LoRAAdapter, _ reference: LoRAAdapter, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(adapter.a.keys.sorted() == reference.a.keys.sorted(), sourceLocation: sourceLocation)
        var worst: Float = 0
        for (module, values) in reference.a.merging(reference.b.mapKeys { $0 + "#B" }, uniquingKeysWith: { first, _ in first }) {
            let mine = module.hasSuffix("#B") ? adapter.b[String(module.dropLast(2))] : adapter.a[module]
            guard let mine, mine.count == values.count else {
                Issue.record("module \(module) differs in shape", sourceLocation: sourceLocation)
                continue
            }
            for (x, y) in zip(mine, values) { worst = max(worst, abs(x - y)) }
        }
        #expect(worst == 0, "largest difference \(worst)", sourceLocation: sourceLocation)
    }
}

extension Dictionary {
    fileprivate func mapKeys(_ transform: (Key) -> Key) -> [Key: Value] {
        Dictionary(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
