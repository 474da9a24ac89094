import FlowCore
import Foundation

/// A LoRA adapter in PEFT's layout: `adapter_config.json` and `adapter_model.safetensors`
/// with `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r].
/// A target module's output becomes `W x + scaling * B (A x)`, with `scaling` = alpha / r
/// (alpha / sqrt(r) with rsLoRA), as PEFT computes it.
public struct LoRAAdapter: Sendable {
    public var rank: Int
    public var alpha: Float
    public var useRSLoRA: Bool
    public var targetModules: [String]
    /// The probability with which training drops each input of the adapter path (PEFT's
    /// `lora_dropout`); inference never drops.
    public var dropout: Float = 0
    /// A and B by module path (`model.layers.0.self_attn.q_proj`).
    public var a: [String: [Float]]
    public var b: [String: [Float]]

    static let prefix = "base_model.model."

    public var scaling: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    public init(rank: Int, alpha: Float, useRSLoRA: Bool = false, targetModules: [String], a: [String: [Float]], b: [String: [Float]]) {
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        self.targetModules = targetModules
        self.a = a
        self.b = b
    }

    /// Reads a PEFT adapter folder.
    public init(folder: URL) throws {
        let configURL = folder.appendingPathComponent("adapter_config.json")
        guard let config = try? JSONValue(contentsOf: configURL), config.objectValue != nil else {
            throw ModelError("cannot read \(configURL.path) as a JSON object")
        }
        guard (config["peft_type"]?.stringValue ?? "LORA") == "LORA", let rank = config["r"]?.intValue, rank > 0 else {
            throw ModelError("\(configURL.path) is not a LoRA adapter with a positive r")
        }
        guard config["fan_in_fan_out"]?.boolValue != true, config["use_dora"]?.boolValue != true else {
            throw ModelError("\(configURL.path): fan_in_fan_out and DoRA adapters are not supported")
        }
        self.rank = rank
        alpha = config["lora_alpha"]?.doubleValue.map(Float.init) ?? Float(rank)
        useRSLoRA = config["use_rslora"]?.boolValue ?? false
        targetModules = (config["target_modules"]?.arrayValue ?? []).compactMap(\.stringValue).sorted()
        dropout = config["lora_dropout"]?.doubleValue.map(Float.init) ?? 0
        let tensors = try SafeTensors(contentsOf: folder.appendingPathComponent("adapter_model.safetensors"))
        var a: [String: [Float]] = [:]
        var b: [String: [Float]] = [:]
        for name in tensors.names {
            guard name.hasPrefix(Self.prefix) else { throw ModelError("adapter tensor \(name) does not start with \(Self.prefix)") }
            let path = String(name.dropFirst(Self.prefix.count))
            if path.hasSuffix(".lora_A.weight") {
                guard tensors.entries[name]?.shape.first == rank else { throw ModelError("\(name) should have \(rank) rows") }
                a[String(path.dropLast(".lora_A.weight".count))] = try tensors.floats(name)
            } else if path.hasSuffix(".lora_B.weight") {
                guard tensors.entries[name]?.shape.last == rank else { throw ModelError("\(name) should have \(rank) columns") }
                b[String(path.dropLast(".lora_B.weight".count))] = try tensors.floats(name)
            } else {
                throw ModelError("adapter tensor \(name) is neither lora_A nor lora_B")
            }
        }
        guard Set(a.keys) == Set(b.keys) else { throw ModelError("the adapter's lora_A and lora_B modules do not pair up") }
        self.a = a
        self.b = b
    }

    /// Writes the adapter as PEFT writes it, through temporary files and renames.
    public func write(to folder: URL, baseModel: String, shapes: [String: (inputs: Int, outputs: Int)]) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var tensors: [SafeTensorsWriter.Tensor] = []
        for module in a.keys.sorted() {
            guard let shape = shapes[module] else { throw ModelError("no shape known for module \(module)") }
            tensors.append(.init(name: Self.prefix + module + ".lora_A.weight", shape: [rank, shape.inputs], values: a[module]!))
            tensors.append(.init(name: Self.prefix + module + ".lora_B.weight", shape: [shape.outputs, rank], values: b[module]!))
        }
        try SafeTensorsWriter.write(tensors, metadata: ["format": "pt"], to: folder.appendingPathComponent("adapter_model.safetensors"))
        let config: JSONValue = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": .string(baseModel), "r": .integer(Int64(rank)),
            "lora_alpha": .number(Double(alpha)), "lora_dropout": .number(Double(dropout)), "target_modules": .array(targetModules.map(JSONValue.string)),
            "bias": "none", "fan_in_fan_out": false, "use_rslora": .bool(useRSLoRA), "use_dora": false, "inference_mode": true,
            "init_lora_weights": true, "modules_to_save": nil,
        ]
        let data = try FlowJSON.prettyEncoder.encode(config)
        let target = folder.appendingPathComponent("adapter_config.json")
        let temporary = folder.appendingPathComponent(".adapter_config.json.partial")
        try data.write(to: temporary)
        if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
        try FileManager.default.moveItem(at: temporary, to: target)
    }
}
