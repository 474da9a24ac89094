import FlowCore
import Foundation

/// How ``LlamaModel/generate(prompt:settings:adapter:onToken:)`` picks tokens.
public struct GenerationSettings: Sendable, Equatable {
    /// Tokens to generate at most.
    public var maximumNewTokens = 64
    /// 0 picks the likeliest token each step (greedy, as Transformers' `do_sample=False`);
    /// above 0 samples from the softmax of the logits divided by it.
    public var temperature: Float = 0
    /// Nucleus sampling: only the smallest set of likeliest tokens whose probabilities
    /// reach `topP` can be drawn. 1 keeps every token.
    public var topP: Float = 1
    /// Makes sampling reproducible.
    public var seed: UInt64 = 0
    /// Tokens that end the generation (the model's end-of-sequence tokens); not returned.
    public var stopTokens: Set<Int> = []

    public init(maximumNewTokens: Int = 64, temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0, stopTokens: Set<Int> = []) {
        self.maximumNewTokens = maximumNewTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stopTokens = stopTokens
    }
}

/// What a generation produced.
public struct Generation: Sendable, Equatable {
    /// Why it stopped.
    public enum FinishReason: String, Sendable {
        /// A stop token came.
        case eos
        /// `maximumNewTokens` were generated, or the caller stopped it.
        case length
    }

    public var tokens: [Int]
    public var finishReason: FinishReason
}

/// What limits which token may come next (constrained decoding, such as JSON that follows
/// a schema): it rules tokens out before each pick, and hears the token picked.
public protocol TokenConstraint: AnyObject {
    /// Sets to `-infinity` the logits of the tokens that may not come next. `remaining`:
    /// how many tokens the generation may still make, this one included.
    func mask(_ logits: inout [Float], remaining: Int)
    /// The token picked.
    func accept(_ token: Int)
    /// The output is whole: the generation ends here (as at an end-of-sequence token).
    var isFinished: Bool { get }
}

extension LlamaModel {
    /// Continues `prompt` one token at a time with a KV cache: the prompt runs through the
    /// model once, then each new token costs one position. `onToken` sees each token as it
    /// comes and returns false to stop early. `constraint`, when given, rules out tokens
    /// before each pick and ends the generation when its output is whole.
    public func generate(
        prompt: [Int], settings: GenerationSettings, adapter: LoRAAdapter? = nil, constraint: (any TokenConstraint)? = nil, onToken: (Int) -> Bool = { _ in true }
    ) throws -> Generation {
        guard !prompt.isEmpty else { throw ModelError("the prompt has no tokens") }
        guard settings.maximumNewTokens >= 0 else { throw ModelError("max_new_tokens must not be negative, got \(settings.maximumNewTokens)") }
        guard settings.temperature >= 0, settings.temperature.isFinite else { throw ModelError("temperature must be 0 or more, got \(settings.temperature)") }
        guard settings.topP > 0, settings.topP <= 1 else { throw ModelError("top_p must be above 0 and at most 1, got \(settings.topP)") }
        var cache = KVCache(layers: configuration.layerCount)
        var generator = SeededGenerator(seed: settings.seed)
        var tokens: [Int] = []
        var logits = try forward(prompt, cache: &cache, adapter: adapter, allPositions: false)
        while tokens.count < settings.maximumNewTokens {
            if let constraint {
                if constraint.isFinished { return Generation(tokens: tokens, finishReason: .eos) }
                constraint.mask(&logits, remaining: settings.maximumNewTokens - tokens.count)
            }
            let token = Self.pick(from: logits, settings: settings, generator: &generator)
            if settings.stopTokens.contains(token) { return Generation(tokens: tokens, finishReason: .eos) }
            constraint?.accept(token)
            tokens.append(token)
            guard onToken(token), tokens.count < settings.maximumNewTokens else { break }
            if constraint?.isFinished == true { return Generation(tokens: tokens, finishReason: .eos) }
            logits = try forward([token], cache: &cache, adapter: adapter, allPositions: false)
        }
        return Generation(tokens: tokens, finishReason: .length)
    }

    /// The next token from one position's logits: the first likeliest when greedy, else a
    /// draw from the temperature-scaled distribution cut to its top-p nucleus.
    static func pick(from logits: [Float], settings: GenerationSettings, generator: inout SeededGenerator) -> Int {
        if settings.temperature == 0 {
            var best = 0
            for index in logits.indices where logits[index] > logits[best] { best = index }
            return best
        }
        let maximum = logits.max()!
        var probabilities = logits.map { Foundation.exp(($0 - maximum) / settings.temperature) }
        let total = probabilities.reduce(0, +)
        for index in probabilities.indices { probabilities[index] /= total }
        let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }
        var nucleus: [Int] = []
        var mass: Float = 0
        for index in ranked {
            nucleus.append(index)
            mass += probabilities[index]
            if mass >= settings.topP { break }
        }
        var draw = Float.random(in: 0..<mass, using: &generator)
        for index in nucleus {
            draw -= probabilities[index]
            if draw < 0 { return index }
        }
        return nucleus.last!
    }
}

extension LlamaModel {
    /// The end-of-sequence tokens a model folder declares (`eos_token_id`, one id or a list,
    /// in `generation_config.json` or else `config.json`), which stop generation.
    public static func endOfSequenceTokens(in folder: URL) -> Set<Int> {
        for file in ["generation_config.json", "config.json"] {
            guard let value = try? JSONValue(contentsOf: folder.appendingPathComponent(file))["eos_token_id"] else { continue }
            if let id = value.intValue { return [id] }
            if let ids = value.arrayValue?.compactMap(\.intValue) { return Set(ids) }
        }
        return []
    }
}
