import FlowML
import FlowTesting

extension LoRAAdapter {
    /// A rank-2, alpha-4 adapter on the `targetModules` of `model` with A and B drawn
    /// uniformly from `range`: B is not zero, so unlike a fresh adapter it changes the
    /// model, and every gradient path through it is exercised.
    static func random(for model: LlamaModel, targetModules: [String], range: ClosedRange<Float>, seed: UInt64) -> LoRAAdapter {
        var generator = SeededGenerator(seed: seed)
        let modules = model.linearShapes.filter { module in targetModules.contains { module.key.hasSuffix($0) } }
        return LoRAAdapter(
            rank: 2, alpha: 4, targetModules: targetModules,
            a: modules.mapValues { shape in (0..<(2 * shape.inputs)).map { _ in Float.random(in: range, using: &generator) } },
            b: modules.mapValues { shape in (0..<(2 * shape.outputs)).map { _ in Float.random(in: range, using: &generator) } }
        )
    }
}
