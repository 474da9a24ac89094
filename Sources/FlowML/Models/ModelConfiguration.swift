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
        guard headCount % keyValueHeadCount == 0 else {
            throw ModelError("num_attention_heads (\(headCount)) must be a multiple of num_key_value_heads (\(keyValueHeadCount))")
        }
    }
}
