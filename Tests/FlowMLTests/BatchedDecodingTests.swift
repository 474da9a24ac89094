import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("decoding several sequences at once")
struct BatchedDecodingTests {
    @Test("a batched step gives each sequence, with its own adapter or none and at its own position, the logits it gets alone, within the rounding bound")
    func sameAsAlone() async throws {
        try await onOwnThread {
            let model = try LlamaModel(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-llama"))
            let adapter = try LoRAAdapter(folder: Repository.file("Tests/FlowMLTests/Fixtures/tiny-llama-lora"))
            let prompts = [[1, 5, 9], [1, 7], [1, 3, 4, 8, 2, 11]]
            let adapters: [LoRAAdapter?] = [nil, adapter, nil]
            var caches: [KVCache] = []
            var texts = prompts
            var next: [Int] = []
            for (prompt, adapter) in zip(prompts, adapters) {
                let (cache, logits) = try model.prefill(prompt, adapter: adapter)
                caches.append(cache)
                next.append(logits.indices.max { logits[$0] < logits[$1] }!)
            }
            for _ in 0..<6 {
                let batched = try model.decodeStep(next, caches: &caches, adapters: adapters)
                for row in prompts.indices {
                    texts[row].append(next[row])
                    // The reference: the whole sequence again, with no cache, on its own.
                    let all = try model.logits(texts[row], adapter: adapters[row])
                    let reference = Array(all.suffix(model.configuration.vocabularySize))
                    let bound = 2 * RoundingBound.forwardPass(model.configuration, positions: texts[row].count, adapterRank: adapters[row]?.rank ?? 0)
                    let worst = RoundingBound.largestScaledDifference(batched[row], reference)
                    #expect(worst <= bound, "row \(row) at \(texts[row].count) positions: \(worst) > \(bound)")
                    next[row] = batched[row].indices.max { batched[row][$0] < batched[row][$1] }!
                }
            }
            #expect(caches.map(\.length) == texts.map(\.count))
        }
    }
}
