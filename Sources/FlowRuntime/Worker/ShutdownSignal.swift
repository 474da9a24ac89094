import Synchronization

/// Set once when the worker begins a graceful shutdown, so activities that run for a long
/// time can save their progress and hand their message back (``ActivityDeferral``) instead
/// of being cancelled when the grace period ends.
public final class ShutdownSignal: Sendable {
    private let requested = Atomic<Bool>(false)

    public init() {}

    /// Whether the worker is shutting down.
    public var isRequested: Bool { requested.load(ordering: .acquiring) }

    func request() { requested.store(true, ordering: .releasing) }
}
