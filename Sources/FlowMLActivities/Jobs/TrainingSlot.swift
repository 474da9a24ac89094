import Synchronization

/// The one training slot of a worker process: training owns the cores, so a worker trains
/// one job at a time and hands other training requests back to the queue for another
/// worker (or for itself, later).
final class TrainingSlot: Sendable {
    private let holder = Mutex<String?>(nil)

    /// Takes the slot for `jobID`, or returns the job holding it.
    func take(for jobID: String) -> (taken: Bool, holder: String?) {
        holder.withLock { holder in
            if let current = holder { return (false, current) }
            holder = jobID
            return (true, jobID)
        }
    }

    func release() { holder.withLock { $0 = nil } }
}
