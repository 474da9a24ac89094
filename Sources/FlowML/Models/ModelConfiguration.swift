import FlowCore
import Foundation

/// A Hugging Face `config.json` of the `llama`, `mistral` or `qwen2` architectures.
public struct ModelConfiguration: Sendable, Equatable {
    public var architecture: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var keyValueHeadCount: Int
    public var headDimension: Int
    public var rmsNormEpsilon: Float
    public var ropeTheta: Float
    public var tiedEmbeddings: Bool
    /// Biases on the query, key and value projections (Qwen2 has them).
    public var attentionBias: Bool
    /// The most positions a sequence may hold here: `max_position_embeddings`, cut to
    /// `sliding_window` when the config has one (Mistral-7B-v0.1: 4096). Within the window,
    /// windowed attention and the full attention this engine computes are the same
    /// product; past it they differ, so nothing runs past it.
    public var contextLength: Int

    public static let architectures = ["llama", "mistral", "qwen2"]

    public init(contentsOf url: URL) throws {
        guard let object = try? JSONValue(contentsOf: url), object.objectValue != nil else {
            throw ModelError("cannot read \(url.path) as a JSON object")
        }
        try self.init(object)
    }

    init(_ object: JSONValue) throws {
        func integer(_ key: String) throws -> Int {
            guard let value = object[key]?.intValue, value > 0 else { throw ModelError("config.json needs a positive integer \(key)") }
            return value
        }
        architecture = object["model_type"]?.stringValue ?? ""
        guard Self.architectures.contains(architecture) else {
            throw ModelError("model_type '\(architecture)' is not supported: use one of \(Self.architectures.joined(separator: ", "))")
        }
        vocabularySize = try integer("vocab_size")
        hiddenSize = try integer("hidden_size")
        intermediateSize = try integer("intermediate_size")
        layerCount = try integer("num_hidden_layers")
        headCount = try integer("num_attention_heads")
        keyValueHeadCount = object["num_key_value_heads"]?.intValue ?? headCount
        headDimension = object["head_dim"]?.intValue ?? hiddenSize / headCount
        rmsNormEpsilon = object["rms_norm_eps"]?.doubleValue.map(Float.init) ?? 1e-6
        // Transformers 5 keeps it under rope_parameters; older configs at the top level.
        ropeTheta = (object["rope_parameters"]?["rope_theta"] ?? object["rope_theta"])?.doubleValue.map(Float.init) ?? 10_000
        tiedEmbeddings = object["tie_word_embeddings"]?.boolValue ?? false
        attentionBias = architecture == "qwen2" ? true : (object["attention_bias"]?.boolValue ?? false)
        let positions = object["max_position_embeddings"]?.intValue ?? 4096
        // Qwen2 configs carry a sliding_window that only applies with use_sliding_window.
        let windowed = architecture != "qwen2" || object["use_sliding_window"]?.boolValue == true
        let window = windowed ? object["sliding_window"]?.intValue : nil
        contextLength = min(positions, window.flatMap { $0 > 0 ? $0 : nil } ?? positions)
        guard headCount % keyValueHeadCount == 0 else {
            throw ModelError("num_attention_heads (\(headCount)) must be a multiple of num_key_value_heads (\(keyValueHeadCount))")
        }
    }
}
