/// Dropout on the input of each adapter path, as PEFT's `lora_dropout` applies it in
/// training: `B A dropout(x)`, each input kept with probability 1 - p and scaled by
/// 1 / (1 - p). The masks are a function of a seed and the module's name alone, so a run
/// resumed from a checkpoint draws exactly the masks the uninterrupted run drew.
public struct LoRADropout: Sendable, Equatable {
    public var probability: Float
    public var seed: UInt64

    public init(probability: Float, seed: UInt64) {
        self.probability = probability
        self.seed = seed
    }

    /// The scaled keep-mask of `count` inputs of `module`: 0 or 1 / (1 - p) each.
    func mask(count: Int, module: String) -> [Float] {
        var generator = SeededGenerator(seed: Self.seed(seed, Int(truncatingIfNeeded: Self.fnv1a(module))))
        let scale = 1 / (1 - probability)
        return (0..<count).map { _ in Float.random(in: 0..<1, using: &generator) < probability ? 0 : scale }
    }

    /// A seed derived from `seed` and some counters (step, micro-batch, sequence).
    public static func seed(_ seed: UInt64, _ counters: Int...) -> UInt64 {
        var generator = SeededGenerator(seed: seed)
        var mixed = generator.next()
        for counter in counters {
            generator = SeededGenerator(seed: mixed ^ UInt64(bitPattern: Int64(counter)))
            mixed = generator.next()
        }
        return mixed
    }

    private static func fnv1a(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }
}
