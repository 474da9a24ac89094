import COpenBLAS

/// The engine's share of the cores. All of its parallelism is OpenBLAS's thread pool (the
/// Swift code around the products runs on the one calling thread), so setting the pool's
/// size bounds the whole engine and nothing oversubscribes the cores.
public enum ComputeThreads {
    /// Threads for matrix products; OpenBLAS starts with one per core
    /// (`OPENBLAS_NUM_THREADS` overrides that).
    public static var count: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }
}
