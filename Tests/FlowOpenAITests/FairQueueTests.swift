import FlowCore
@testable import FlowOpenAI
import Testing

/// The order waiting calls take the limiter's capacity in, as a value.
@Suite("the rate limiter's fair queue, without a clock")
struct FairQueueTests {
    /// Takes every call, all keys ready, and returns them in order.
    func drain(_ queue: inout FairQueue<String>) -> [String] {
        var order: [String] = []
        while let (_, element) = queue.take(where: { _, _ in true }) { order.append(element) }
        return order
    }

    @Test("a key that floods 500 calls cannot starve one that sends 20 after it: they alternate")
    func flood() {
        var queue = FairQueue<String>()
        for index in 0..<500 { _ = queue.enqueue("flood-\(index)", key: "flood", weight: 1, priority: .normal) }
        for index in 0..<20 { _ = queue.enqueue("quiet-\(index)", key: "quiet", weight: 1, priority: .normal) }
        let order = drain(&queue)
        #expect(order.count == 520)
        let quietPositions = order.enumerated().filter { $0.element.hasPrefix("quiet") }.map(\.offset)
        #expect(quietPositions.count == 20)
        for (turn, position) in quietPositions.enumerated() {
            // The quiet key's n-th call waits for at most one flood call per turn, plus one.
            #expect(position <= 2 * turn + 1, "quiet call \(turn) went at \(position)")
        }
        #expect(order.filter { $0.hasPrefix("flood") } == (0..<500).map { "flood-\($0)" }, "each key's calls keep their order")
        #expect(queue.isEmpty)
    }

    @Test("weights share the turns: weight 2 takes two for another's one, spread out")
    func weights() {
        var queue = FairQueue<String>()
        for index in 0..<30 { _ = queue.enqueue("a\(index)", key: "a", weight: 2, priority: .normal) }
        for index in 0..<30 { _ = queue.enqueue("b\(index)", key: "b", weight: 1, priority: .normal) }
        let first = drain(&queue).prefix(30)
        #expect(first.filter { $0.hasPrefix("a") }.count == 20)
        // Smooth round-robin: never three of a's in a row while b waits.
        let keys = first.map { $0.prefix(1) }.joined()
        #expect(!keys.contains("aaa"), "\(keys)")
    }

    @Test("every high call goes before any normal one, and normal before low, whenever they came")
    func priorities() {
        var queue = FairQueue<String>()
        _ = queue.enqueue("low", key: "", weight: 1, priority: .low)
        for index in 0..<3 { _ = queue.enqueue("normal-\(index)", key: "t\(index)", weight: 1, priority: .normal) }
        _ = queue.enqueue("high", key: "t9", weight: 1, priority: .high)
        let order = drain(&queue)
        #expect(order.first == "high")
        #expect(order.last == "low")
    }

    @Test("a key held by its own limit is skipped and keeps its place; a quiet key banks no credit")
    func readiness() {
        var queue = FairQueue<String>()
        for index in 0..<4 { _ = queue.enqueue("a\(index)", key: "a", weight: 1, priority: .normal) }
        for index in 0..<4 { _ = queue.enqueue("b\(index)", key: "b", weight: 1, priority: .normal) }
        var taken: [String] = []
        for _ in 0..<3 { taken.append(queue.take(where: { key, _ in key != "b" })!.element) }
        #expect(taken == ["a0", "a1", "a2"], "b's limit is used up; a goes on alone")
        #expect(drain(&queue) == ["a3", "b0", "b1", "b2", "b3"], "b lost nothing while held, and gained nothing either")
        // After a burst alone, a has no credit over b: they alternate from here.
        var fresh = FairQueue<String>()
        for index in 0..<10 { _ = fresh.enqueue("a\(index)", key: "a", weight: 1, priority: .normal) }
        for _ in 0..<10 { _ = fresh.take(where: { _, _ in true }) }
        for index in 0..<2 { _ = fresh.enqueue("a\(10 + index)", key: "a", weight: 1, priority: .normal) }
        for index in 0..<2 { _ = fresh.enqueue("b\(index)", key: "b", weight: 1, priority: .normal) }
        let order = drain(&fresh)
        #expect(order.count == 4)
        #expect(Set(order.prefix(2).map { $0.prefix(1) }) == ["a", "b"], "\(order)")
    }

    @Test("a call taken out (its caller gave up) is gone, and the others keep their order")
    func removal() {
        var queue = FairQueue<String>()
        let tickets = (0..<5).map { queue.enqueue("c\($0)", key: "k", weight: 1, priority: .normal) }
        #expect(queue.remove(tickets[2]) == "c2")
        #expect(queue.remove(tickets[2]) == nil)
        #expect(drain(&queue) == ["c0", "c1", "c3", "c4"])
    }
}
