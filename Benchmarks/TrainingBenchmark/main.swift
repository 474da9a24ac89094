import FlowML
import Foundation

/// LoRA training throughput on "bench-small" (Llama, vocabulary 8192, hidden 512, 8 layers,
/// 8 heads with 4 key-value heads, intermediate 1408; sequences of 256, batch 4, fp32; LoRA
/// r 8, alpha 16 on q_proj and v_proj; AdamW lr 1e-3), beside PyTorch + PEFT training the
/// same model folder on the same sequences in the same run.
///
/// With `--chat`, the first three quarters of each sequence have no label: a completion-only
/// loss, as chat data has (only the assistant's turns count), which PyTorch computes the same
/// way (`--prompt-length`).
///
///     swift run -c release flow-training-benchmark [--steps 20] [--rounds 3] [--threads 2] [--batch-size 4] [--chat] [--no-pytorch]

EngineEnvironment.relaunchIfNeeded()
let arguments = CommandLine.arguments
func option(_ name: String, default value: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let parsed = Int(arguments[index + 1]) else { return value }
    return parsed
}
let steps = option("--steps", default: 20)
let threads = option("--threads", default: 2)
let warmup = 2
let sequenceLength = 256
let batchSize = option("--batch-size", default: 4)
ComputeThreads.count = threads

func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

let root = FileManager.default.temporaryDirectory.appendingPathComponent("flow-training-benchmark-\(UUID().uuidString.prefix(8))")
defer { try? FileManager.default.removeItem(at: root) }
let modelFolder = root.appendingPathComponent("bench-small")
var shape = ModelFactory.Shape(vocabulary: 8192)
shape.hidden = 512
shape.intermediate = 1408
shape.layers = 8
shape.heads = 8
shape.keyValueHeads = 4
try ModelFactory.writeRandomLlama(to: modelFolder, shape: shape)

var generator = SeededGenerator(seed: 1)
let sequences = (0..<32).map { _ in (0..<sequenceLength).map { _ in Int.random(in: 0..<8192, using: &generator) } }
let dataFile = root.appendingPathComponent("sequences.json")
try JSONSerialization.data(withJSONObject: sequences).write(to: dataFile)
let promptLength = CommandLine.arguments.contains("--chat") ? sequenceLength * 3 / 4 : 0
let examples = sequences.map { ids in TokenizedExample(ids: ids, labels: ids.enumerated().map { $0.offset < promptLength ? TrainingBatch.ignoredLabel : $0.element }) }
// The model's 110 MB are still dirty in the page cache; left alone, the kernel writes
// them back half a minute later, in the middle of a timed run, and on a virtual machine
// that writing takes CPU from the run.
sync()

/// Trains `steps` timed steps (after the warm-up) and returns tokens per second.
func swiftRun(checkpointEvery: Int) throws -> (tokensPerSecond: Double, stepSeconds: Double) {
    var settings = TrainingSettings()
    settings.rank = 8
    settings.alpha = 16
    settings.targetModules = ["q_proj", "v_proj"]
    settings.learningRate = 1e-3
    settings.batchSize = batchSize
    settings.maximumLength = sequenceLength
    settings.maximumSteps = warmup + steps
    settings.checkpointEvery = checkpointEvery
    settings.keepCheckpoints = 2
    let model = try LlamaModel(folder: modelFolder)
    let output = root.appendingPathComponent("run-\(checkpointEvery)")
    let trainer = try LoRATrainer(model: model, examples: examples, settings: settings, output: output, resume: false)
    var began = ContinuousClock.now
    try trainer.train(progress: { progress in
        if progress.step == warmup { began = ContinuousClock.now }
    })
    let elapsed = ContinuousClock.now - began
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return (Double(steps * batchSize * sequenceLength) / seconds, seconds / Double(steps))
}

/// One run of the PyTorch + PEFT peer on the same folder and sequences: its tokens per
/// second, seconds per step, peak memory in MB and version, or nil when it is not installed.
func pytorchRun() throws -> (tokensPerSecond: Double, stepSeconds: Double, peak: Double, version: String)? {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("pytorch/lora_benchmark.py")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script.path, "--model", modelFolder.path, "--data", dataFile.path, "--steps", "\(steps)", "--warmup", "\(warmup)", "--threads", "\(threads)", "--batch-size", "\(batchSize)", "--prompt-length", "\(promptLength)"]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0,
          let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
          let figures = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
          let tokensPerSecond = figures["tokens_per_second"] as? Double, let peak = figures["peak_rss_mb"] as? Double
    else { return nil }
    return (tokensPerSecond, figures["step_seconds"] as? Double ?? 0, peak, figures["torch"] as? String ?? "?")
}

print("bench-small: \(steps) timed steps of \(batchSize) x \(sequenceLength) tokens after \(warmup) warm-up steps, \(threads) threads"
    + (promptLength > 0 ? ", chat data: the first \(promptLength) positions of each sequence unlabelled" : ""))
// The runs alternate (ours without checkpoints, ours with, PyTorch's), so a slow patch of
// a shared machine falls on all three; each figure is the median of its rounds.
let rounds = option("--rounds", default: 3)
let withPyTorch = !arguments.contains("--no-pytorch")
var plainRuns: [(tokensPerSecond: Double, stepSeconds: Double)] = []
var checkpointedRuns: [(tokensPerSecond: Double, stepSeconds: Double)] = []
var pytorchRuns: [(tokensPerSecond: Double, stepSeconds: Double, peak: Double, version: String)] = []
var swiftPeak = 0.0
for round in 0..<rounds {
    plainRuns.append(try swiftRun(checkpointEvery: 1_000_000))
    // The peak of one run, as PyTorch's is: later runs reuse the heap the first one grew.
    if round == 0 { swiftPeak = peakResidentMegabytes() }
    checkpointedRuns.append(try swiftRun(checkpointEvery: 10))
    guard withPyTorch else { continue }
    guard let run = try pytorchRun() else {
        print("PyTorch + PEFT peer failed (python3 -m pip install torch transformers peft safetensors)")
        exit(1)
    }
    pytorchRuns.append(run)
}
func median<Run>(_ runs: [Run], _ rate: (Run) -> Double) -> Run { runs.sorted { rate($0) < rate($1) }[runs.count / 2] }
let plain = median(plainRuns, \.tokensPerSecond)
let checkpointed = median(checkpointedRuns, \.tokensPerSecond)
let checkpointCost = 1 - checkpointed.tokensPerSecond / plain.tokensPerSecond
print(String(format: "AntifragileFlow      %7.0f tokens/s  %6.3f s/step  peak %6.0f MB  (median of %d; runs %@)", plain.tokensPerSecond, plain.stepSeconds, swiftPeak, rounds, plainRuns.map { String(format: "%.0f", $0.tokensPerSecond) }.joined(separator: ", ")))
print(String(format: "  checkpoint every 10 %7.0f tokens/s  cost %.1f%% of throughput (target < 3%%)", checkpointed.tokensPerSecond, checkpointCost * 100))
if withPyTorch {
    let pytorch = median(pytorchRuns, \.tokensPerSecond)
    let pytorchPeak = pytorchRuns.map(\.peak).max()!
    print(String(format: "PyTorch %@ + PEFT  %7.0f tokens/s  %6.3f s/step  peak %6.0f MB  (runs %@)", pytorch.version, pytorch.tokensPerSecond, pytorch.stepSeconds, pytorchPeak, pytorchRuns.map { String(format: "%.0f", $0.tokensPerSecond) }.joined(separator: ", ")))
    print(String(format: "ratio: %.2fx PyTorch's tokens/s (target >= %.1f), %.2fx its peak memory (target <= 0.4)", plain.tokensPerSecond / pytorch.tokensPerSecond, promptLength > 0 ? 1.5 : 1.3, swiftPeak / pytorchPeak))
}
