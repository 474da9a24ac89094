import FlowML
import FlowTesting

extension LoRAAdapter {
    /// A rank-2, alpha-4 adapter on the `targetModules` of `model` with A and B drawn
    /// uniformly from `range`: B is not zero, so unlike a fresh adapter it changes the
    /// model, and every gradient path through it is exercised.
    /// The same seed gives the same adapter in every process: modules draw in name order
    /// (a dictionary's order changes from one process to the next).
    static func random(for model: LlamaModel, targetModules: [String], range: ClosedRange<Float>, seed: UInt64) -> LoRAAdapter {
        var generator = SeededGenerator(seed: seed)
        let modules = model.linearShapes.filter { module in targetModules.contains { module.key.hasSuffix($0) } }.sorted { $0.key < $1.key }
        var a: [String: [Float]] = [:]
        var b: [String: [Float]] = [:]
        for (name, shape) in modules {
            a[name] = (0..<(2 * shape.inputs)).map { _ in Float.random(in: range, using: &generator) }
            b[name] = (0..<(2 * shape.outputs)).map { _ in Float.random(in: range, using: &generator) }
        }
        return LoRAAdapter(rank: 2, alpha: 4, targetModules: targetModules, a: a, b: b)
    }
}
