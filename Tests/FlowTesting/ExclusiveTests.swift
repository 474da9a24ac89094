/// Tests that run several brokers at once (the 3-node cluster, compose.yaml's containers)
/// take turns: on two cores, two of them side by side starve each other's nodes, and
/// their deadlines measure the machine rather than the code.
public actor ExclusiveTests {
    public static let shared = ExclusiveTests()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    private func acquire() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    /// Runs `body` when no other exclusive test runs.
    public static func run<Value: Sendable>(_ body: () async throws -> Value) async throws -> Value {
        await shared.acquire()
        do {
            let value = try await body()
            await shared.release()
            return value
        } catch {
            await shared.release()
            throw error
        }
    }
}
