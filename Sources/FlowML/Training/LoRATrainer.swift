import FlowCore
import Foundation
import Synchronization

/// How a LoRA fine-tuning run goes.
public struct TrainingSettings: Codable, Sendable, Equatable {
    public var rank = 8
    public var alpha: Float = 16
    /// Module names (`q_proj`, `v_proj`) or `all-linear`.
    public var targetModules = ["q_proj", "v_proj"]
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0.01
    public var warmupSteps = 0
    public var maximumSteps = 100
    public var batchSize = 4
    public var gradientAccumulation = 1
    public var maximumLength = 256
    public var clipNorm: Float = 1.0
    public var seed: UInt64 = 42
    public var checkpointEvery = 10
    public var keepCheckpoints = 2
    /// PEFT's `lora_dropout`: the probability of dropping each input of an adapter path.
    public var dropout: Float = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case targetModules, learningRate, weightDecay, warmupSteps, batchSize, seed
        case rank = "r"
        case alpha = "loraAlpha"
        case maximumSteps = "maxSteps"
        case gradientAccumulation = "gradientAccumulationSteps"
        case maximumLength = "maxLength"
        case clipNorm = "maxGradNorm"
        case checkpointEvery = "saveSteps"
        case keepCheckpoints = "saveTotalLimit"
        case dropout = "loraDropout"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainingSettings()
        rank = try c.decodeIfPresent(Int.self, forKey: .rank) ?? d.rank
        alpha = try c.decodeIfPresent(Float.self, forKey: .alpha) ?? d.alpha
        targetModules = try c.decodeIfPresent([String].self, forKey: .targetModules) ?? d.targetModules
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? d.learningRate
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? d.warmupSteps
        maximumSteps = try c.decodeIfPresent(Int.self, forKey: .maximumSteps) ?? d.maximumSteps
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        gradientAccumulation = try c.decodeIfPresent(Int.self, forKey: .gradientAccumulation) ?? d.gradientAccumulation
        maximumLength = try c.decodeIfPresent(Int.self, forKey: .maximumLength) ?? d.maximumLength
        clipNorm = try c.decodeIfPresent(Float.self, forKey: .clipNorm) ?? d.clipNorm
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? d.checkpointEvery
        keepCheckpoints = try c.decodeIfPresent(Int.self, forKey: .keepCheckpoints) ?? d.keepCheckpoints
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? d.dropout
    }

    /// The learning rate of optimizer step `step` (0-based): linear warm-up, then cosine
    /// decay to zero at the last step, as Transformers' `get_cosine_schedule_with_warmup`.
    public func learningRate(atStep step: Int) -> Float {
        if step < warmupSteps { return learningRate * Float(step) / Float(max(1, warmupSteps)) }
        let progress = Double(step - warmupSteps) / Double(max(1, maximumSteps - warmupSteps))
        return learningRate * Float(max(0, 0.5 * (1 + cos(Double.pi * progress))))
    }
}

/// Where a run stands, as `trainer_state.json` keeps it.
public struct TrainerState: Codable, Sendable, Equatable {
    public var globalStep = 0
    public var losses: [Float] = []
    public var learningRate: Float = 0
    /// The next example in `order`, and the epoch `order` belongs to.
    public var dataPosition = 0
    public var epoch = 0
    public var order: [Int] = []
    public var generator: SeededGenerator

    enum CodingKeys: String, CodingKey {
        case globalStep, learningRate, dataPosition, epoch, order
        case losses = "lossHistory"
        case generator = "rngState"
    }
}

/// What the trainer reports after each optimizer step.
/// A checkpoint's write, from its start to its end on disk.
public struct CheckpointWrite: Sendable {
    public var step: Int
    public var folder: URL
    public var began: Date
    public var ended: Date
    /// Why it failed, when it did.
    public var error: String?
}

public struct TrainingProgress: Sendable {
    public var step: Int
    public var maximumSteps: Int
    public var loss: Float
    public var learningRate: Float
    /// Tokens in the step's batches, and the seconds the step took.
    public var tokens: Int
    public var seconds: Double
    /// The checkpoint begun at this step. It is written on a thread of its own and appears
    /// under this name only once it is complete.
    public var checkpoint: URL?

    public var tokensPerSecond: Double { Double(tokens) / max(seconds, 1e-9) }
}

/// LoRA fine-tuning of a frozen base model, with checkpoints streamed to disk.
///
/// Every `save_steps` steps the trainer writes `checkpoint-<step>/`: the adapter in PEFT's
/// layout, the optimizer's moments and `trainer_state.json`. It is written on a thread of
/// its own while training goes on, first under a temporary name that is renamed when the
/// files are flushed, so a crash never leaves a half checkpoint that looks complete; the
/// newest `save_total_limit` are kept. `resume` continues the newest complete checkpoint,
/// and the run goes on exactly as it would have without the interruption.
public final class LoRATrainer: @unchecked Sendable {
    public let model: LlamaModel
    public let settings: TrainingSettings
    public let output: URL
    let examples: [TokenizedExample]
    private var adapter: LoRAAdapter
    private var optimizer: AdamW
    private var state: TrainerState
    private let writeFailure = FailureBox()
    private let writesInFlight = DispatchGroup()
    /// Told of each checkpoint once its write has ended, on the thread that wrote it: for
    /// the ML actor's traces and metrics. Set it before ``train(progress:shouldStop:)``.
    public var checkpointWritten: (@Sendable (CheckpointWrite) -> Void)?

    /// The failure of a checkpoint written on another thread, for the training thread.
    final class FailureBox: Sendable {
        let failure = Mutex<(any Error)?>(nil)
    }

    public init(model: LlamaModel, examples: [TokenizedExample], settings: TrainingSettings, output: URL, resume: Bool) throws {
        guard settings.rank > 0, settings.batchSize > 0, settings.gradientAccumulation > 0, settings.maximumSteps > 0 else {
            throw ModelError("r, batch_size, gradient_accumulation_steps and max_steps must be positive")
        }
        guard settings.dropout >= 0, settings.dropout < 1 else {
            throw ModelError("lora_dropout must be at least 0 and below 1, got \(settings.dropout)")
        }
        self.model = model
        self.settings = settings
        self.output = output
        self.examples = examples
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        if resume, let checkpoint = Self.newestCheckpoint(in: output) {
            adapter = try LoRAAdapter(folder: checkpoint)
            state = try FlowJSON.decoder.decode(TrainerState.self, from: Data(contentsOf: checkpoint.appendingPathComponent("trainer_state.json")))
            optimizer = try Self.loadOptimizer(checkpoint.appendingPathComponent("optimizer.safetensors"), settings: settings, step: state.globalStep)
        } else {
            var generator = SeededGenerator(seed: settings.seed)
            adapter = try Self.initialAdapter(model: model, settings: settings, generator: &generator)
            optimizer = AdamW(learningRate: settings.learningRate, weightDecay: settings.weightDecay)
            state = TrainerState(generator: generator)
        }
    }

    /// The adapter as it stands.
    public var currentAdapter: LoRAAdapter { adapter }
    public var trainerState: TrainerState { state }

    /// PEFT's initialisation: A uniform in ±1/sqrt(in) (Kaiming with a = sqrt(5)), B zero.
    static func initialAdapter(model: LlamaModel, settings: TrainingSettings, generator: inout SeededGenerator) throws -> LoRAAdapter {
        let shapes = model.linearShapes
        let wanted = settings.targetModules.contains("all-linear") ? Set(shapes.keys.map { String($0.split(separator: ".").last!) }) : Set(settings.targetModules)
        let modules = shapes.keys.filter { wanted.contains(String($0.split(separator: ".").last!)) }.sorted()
        guard !modules.isEmpty else { throw ModelError("no module of the model matches target_modules \(settings.targetModules)") }
        var a: [String: [Float]] = [:]
        var b: [String: [Float]] = [:]
        for module in modules {
            let (inputs, outputs) = shapes[module]!
            let bound = 1 / Float(inputs).squareRoot()
            a[module] = (0..<(settings.rank * inputs)).map { _ in Float.random(in: -bound...bound, using: &generator) }
            b[module] = [Float](repeating: 0, count: outputs * settings.rank)
        }
        var adapter = LoRAAdapter(rank: settings.rank, alpha: settings.alpha, targetModules: Array(wanted).sorted(), a: a, b: b)
        adapter.dropout = settings.dropout
        return adapter
    }

    /// How a call to ``train(progress:shouldStop:)`` ended.
    public enum Ending: Sendable, Equatable {
        /// `max_steps` reached; the final adapter is in the output folder.
        case completed
        /// `shouldStop` asked to stop; `checkpoint` (complete on disk) continues the run.
        case stopped(checkpoint: URL)
    }

    /// Runs optimizer steps until `max_steps` or until `shouldStop` says so (checked after
    /// each step), checkpointing on the way; writes the final adapter to the output folder
    /// when the run completes. A stop writes a checkpoint of the step it stopped after and
    /// waits until it is on disk, so the run can continue from exactly there.
    @discardableResult
    public func train(progress: (TrainingProgress) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws -> Ending {
        while state.globalStep < settings.maximumSteps {
            let started = ContinuousClock.now
            let learningRate = settings.learningRate(atStep: state.globalStep)
            var gradients = LoRAGradients(zeroFor: adapter)
            var loss: Float = 0
            var tokens = 0
            for microBatch in 0..<settings.gradientAccumulation {
                let batch = nextBatch()
                tokens += batch.ids.reduce(0) { $0 + $1.count }
                // Dropout masks come from the seed and the step alone, so a resumed run
                // draws the masks the uninterrupted one drew, with no generator to save.
                let dropout = settings.dropout > 0 ? LoRADropout(probability: settings.dropout, seed: LoRADropout.seed(settings.seed, state.globalStep, microBatch)) : nil
                let (batchLoss, batchGradients) = try model.lossAndGradients(batch, adapter: adapter, dropout: dropout)
                loss += batchLoss / Float(settings.gradientAccumulation)
                gradients.add(batchGradients, scaledBy: 1 / Float(settings.gradientAccumulation))
            }
            Self.clip(&gradients, to: settings.clipNorm)
            optimizer.learningRate = learningRate
            optimizer.update(&adapter, with: gradients)
            state.globalStep += 1
            state.losses.append(loss)
            state.learningRate = learningRate
            let finished = state.globalStep >= settings.maximumSteps
            let stopping = !finished && shouldStop()
            var checkpoint: URL?
            if state.globalStep % settings.checkpointEvery == 0 || finished || stopping {
                checkpoint = try saveCheckpoint()
            }
            let seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
            progress(TrainingProgress(step: state.globalStep, maximumSteps: settings.maximumSteps, loss: loss, learningRate: learningRate, tokens: tokens, seconds: seconds, checkpoint: checkpoint))
            if stopping, let checkpoint {
                try waitForWrites()
                return .stopped(checkpoint: checkpoint)
            }
        }
        try waitForWrites()
        try adapter.write(to: output, baseModel: "", shapes: model.linearShapes)
        return .completed
    }

    private func nextBatch() -> TrainingBatch {
        var ids: [[Int]] = []
        var labels: [[Int]] = []
        for _ in 0..<settings.batchSize {
            if state.order.isEmpty || state.dataPosition >= state.order.count {
                if !state.order.isEmpty { state.epoch += 1 }
                state.order = Array(examples.indices).shuffled(using: &state.generator)
                state.dataPosition = 0
            }
            let example = examples[state.order[state.dataPosition]]
            state.dataPosition += 1
            ids.append(example.ids)
            labels.append(example.labels)
        }
        return TrainingBatch(ids: ids, labels: labels)
    }

    /// Scales the gradients down when their global norm exceeds `limit`, as
    /// `torch.nn.utils.clip_grad_norm_` does.
    static func clip(_ gradients: inout LoRAGradients, to limit: Float) {
        guard limit > 0 else { return }
        // In a fixed order: a dictionary's iteration order differs between runs, and a sum
        // in another order differs in its last bits, which a long run amplifies.
        var squares: Float = 0
        for module in gradients.a.keys.sorted() {
            for value in gradients.a[module]! { squares += value * value }
            for value in gradients.b[module]! { squares += value * value }
        }
        let norm = squares.squareRoot()
        guard norm > limit else { return }
        let factor = limit / (norm + 1e-6)
        gradients.a = gradients.a.mapValues { $0.map { $0 * factor } }
        gradients.b = gradients.b.mapValues { $0.map { $0 * factor } }
    }

    // MARK: Checkpoints

    /// Starts writing `checkpoint-<step>` on a thread of its own and returns its final
    /// location. Waits for the previous write first, so at most one is in flight.
    private func saveCheckpoint() throws -> URL {
        try waitForWrites()
        let folder = output.appendingPathComponent("checkpoint-\(state.globalStep)")
        let adapter = self.adapter
        let optimizer = self.optimizer
        let state = self.state
        let shapes = model.linearShapes
        let keep = settings.keepCheckpoints
        let output = self.output
        writesInFlight.enter()
        let began = Date()
        let thread = Thread { [writeFailure, writesInFlight, checkpointWritten] in
            defer { writesInFlight.leave() }
            var failure: (any Error)?
            do {
                try Self.write(checkpoint: folder, adapter: adapter, optimizer: optimizer, state: state, shapes: shapes)
                try Self.prune(output, keeping: keep)
            } catch {
                failure = error
                writeFailure.failure.withLock { $0 = error }
            }
            checkpointWritten?(CheckpointWrite(step: state.globalStep, folder: folder, began: began, ended: Date(), error: failure.map { "\($0)" }))
        }
        thread.start()
        return folder
    }

    /// Waits for the checkpoint being written, and reports its failure.
    public func waitForWrites() throws {
        writesInFlight.wait()
        if let error = writeFailure.failure.withLock({ error -> (any Error)? in
            defer { error = nil }
            return error
        }) {
            throw ModelError("a checkpoint could not be written: \(error)")
        }
    }

    static func write(checkpoint folder: URL, adapter: LoRAAdapter, optimizer: AdamW, state: TrainerState, shapes: [String: (inputs: Int, outputs: Int)]) throws {
        let parent = folder.deletingLastPathComponent()
        let partial = parent.appendingPathComponent(".\(folder.lastPathComponent).partial")
        try? FileManager.default.removeItem(at: partial)
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        try adapter.write(to: partial, baseModel: "", shapes: shapes)
        var moments: [SafeTensorsWriter.Tensor] = []
        for (key, values) in optimizer.firstMoments { moments.append(.init(name: "exp_avg." + key, shape: [values.count], values: values)) }
        for (key, values) in optimizer.secondMoments { moments.append(.init(name: "exp_avg_sq." + key, shape: [values.count], values: values)) }
        try SafeTensorsWriter.write(moments, metadata: ["step": String(optimizer.step)], to: partial.appendingPathComponent("optimizer.safetensors"))
        let stateFile = partial.appendingPathComponent("trainer_state.json")
        try FlowJSON.prettyEncoder.encode(state).write(to: stateFile)
        let handle = try FileHandle(forWritingTo: stateFile)
        try handle.synchronize()
        try handle.close()
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.moveItem(at: partial, to: folder)
    }

    static func loadOptimizer(_ url: URL, settings: TrainingSettings, step: Int) throws -> AdamW {
        let file = try SafeTensors(contentsOf: url)
        var optimizer = AdamW(learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        optimizer.restore(step: step, first: try Dictionary(uniqueKeysWithValues: file.names.filter { $0.hasPrefix("exp_avg.") }.map { (String($0.dropFirst("exp_avg.".count)), try file.floats($0)) }),
                          second: try Dictionary(uniqueKeysWithValues: file.names.filter { $0.hasPrefix("exp_avg_sq.") }.map { (String($0.dropFirst("exp_avg_sq.".count)), try file.floats($0)) }))
        return optimizer
    }

    /// The newest complete checkpoint: partial ones start with a dot and are never chosen.
    public static func newestCheckpoint(in folder: URL) -> URL? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("checkpoint-"), let step = Int(name.dropFirst("checkpoint-".count)) else { return nil }
            return (step, name)
        }.max { $0.0 < $1.0 }.map { folder.appendingPathComponent($0.1) }
    }

    static func prune(_ folder: URL, keeping keep: Int) throws {
        guard keep > 0 else { return }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let steps = names.compactMap { name -> Int? in name.hasPrefix("checkpoint-") ? Int(name.dropFirst("checkpoint-".count)) : nil }.sorted()
        for step in steps.dropLast(keep) {
            try FileManager.default.removeItem(at: folder.appendingPathComponent("checkpoint-\(step)"))
        }
    }
}

extension AdamW {
    /// Puts back the moments a checkpoint kept.
    mutating func restore(step: Int, first: [String: [Float]], second: [String: [Float]]) {
        self.step = step
        firstMoments = first
        secondMoments = second
    }
}
