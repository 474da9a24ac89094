import COpenBLAS
import Dispatch
import Foundation
import Synchronization

/// The engine's share of the cores, and the one way it uses more than one.
///
/// OpenBLAS runs single-threaded, on whichever thread calls it, and the engine spreads
/// work over `count` threads itself: training runs the packs of a batch side by side, and
/// a product too large for one thread is cut into blocks (``Matrix``). With OpenBLAS's own
/// pool, its threads spun in `sched_yield` while the Swift code between two products ran
/// on one core; now every thread does both the products and the work between them. Work
/// already running on one of the engine's threads does not split again, so nothing ever
/// asks for more than `count` cores.
public enum ComputeThreads {
    private static let configured = Atomic<Int>(0)

    /// Threads the engine may keep busy: the task's ``withCount(_:_:)`` when inside one,
    /// else what was set (`--threads`), else `FLOW_ML_THREADS`, else one per core.
    public static var count: Int {
        get {
            if let scoped = scopedCount, scoped > 0 { return scoped }
            let value = configured.load(ordering: .relaxed)
            if value > 0 { return value }
            return environmentCount ?? ProcessInfo.processInfo.activeProcessorCount
        }
        set {
            singleThreadedOpenBLAS()
            configured.store(max(1, newValue), ordering: .relaxed)
        }
    }

    /// Runs `body` with the engine using `threads` threads in this task alone. Tests that
    /// compare one thread count with another use it, so that they never change the count
    /// under a test running beside them.
    public static func withCount<Result>(_ threads: Int, _ body: () throws -> Result) rethrows -> Result {
        singleThreadedOpenBLAS()
        return try $scopedCount.withValue(max(1, threads), operation: body)
    }

    @TaskLocal private static var scopedCount: Int?

    private static let environmentCount: Int? = ProcessInfo.processInfo.environment["FLOW_ML_THREADS"].flatMap(Int.init).map { max(1, $0) }

    /// Makes OpenBLAS compute on the calling thread only; every product calls this first
    /// (it does the work once per process).
    static func singleThreadedOpenBLAS() { _ = openBLASConfigured }

    private static let openBLASConfigured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// How many threads `work` (in multiply-adds, or any comparable unit) deserves: 1 on a
    /// thread that is already one of a split's, or when the work is too small to repay
    /// handing it out.
    static func lanes(forWork work: Int, minimumPerLane: Int) -> Int {
        guard !isInsideSplit else { return 1 }
        return max(1, min(count, work / max(1, minimumPerLane)))
    }

    /// Runs `body` for each of `parts` on up to `lanes` threads (the caller's among them)
    /// and returns when all have run. Parts go to whichever thread is free next, so the
    /// result of a part must not depend on which thread ran it. Inside `body`, the engine
    /// does not split work again.
    static func forEach(_ parts: Int, lanes: Int = count, _ body: @Sendable (Int) -> Void) {
        let lanes = isInsideSplit ? 1 : min(lanes, parts)
        guard lanes > 1 else {
            for part in 0..<parts { body(part) }
            return
        }
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: lanes) { _ in
            let outer = pthread_getspecific(insideSplitKey)
            pthread_setspecific(insideSplitKey, UnsafeRawPointer(bitPattern: 1))
            defer { pthread_setspecific(insideSplitKey, outer) }
            while true {
                let part = next.add(1, ordering: .relaxed).oldValue
                guard part < parts else { return }
                body(part)
            }
        }
    }

    private static var isInsideSplit: Bool { pthread_getspecific(insideSplitKey) != nil }

    private static let insideSplitKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}
