import Foundation

/// Settings the engine needs in its process's environment before it starts, because the
/// libraries read them only when they load:
/// - `OPENBLAS_CORETYPE`, when OpenBLAS chose generic kernels for a CPU with better ones
///   (``OpenBLASKernels``), or when it names kernels this CPU cannot run (copied from
///   another host, say), which would end the process with SIGILL at its first product;
/// - glibc's `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` and `MALLOC_TOP_PAD_`. The engine allocates
///   and frees large buffers every step (a widened weight matrix, a layer's activations);
///   above the default threshold each is a fresh mapping that page-faults in again,
///   zeroed, and on a 1B model that was a third of the run. In the heap, freed buffers are
///   reused.
public enum EngineEnvironment {
    /// The variables to add to `environment`, or to change in it (empty when nothing is
    /// missing or wrong).
    public static func missingVariables(in environment: [String: String], coreName: String, cpuFlags: Set<String>) -> [String: String] {
        var missing: [String: String] = [:]
        if let named = environment["OPENBLAS_CORETYPE"] {
            if let runnable = OpenBLASKernels.replacement(forUnrunnable: named, cpuFlags: cpuFlags) { missing["OPENBLAS_CORETYPE"] = runnable }
        } else if let better = OpenBLASKernels.betterCoreType(than: coreName, cpuFlags: cpuFlags) {
            missing["OPENBLAS_CORETYPE"] = better
        }
        if environment["MALLOC_MMAP_THRESHOLD_"] == nil {
            missing["MALLOC_MMAP_THRESHOLD_"] = String(1 << 30)
            if environment["MALLOC_TRIM_THRESHOLD_"] == nil { missing["MALLOC_TRIM_THRESHOLD_"] = String(1 << 32) }
            if environment["MALLOC_TOP_PAD_"] == nil { missing["MALLOC_TOP_PAD_"] = String(256 << 20) }
        }
        return missing
    }

    /// A notice when `OPENBLAS_CORETYPE` pins kernels that run here but are weaker than
    /// the best this CPU has (Haswell's AVX2 on an AVX-512 CPU, say): the engine keeps the
    /// operator's choice, and says what it costs. Nil otherwise.
    public static func weakerKernelsNotice(in environment: [String: String], cpuFlags: Set<String>) -> String? {
        guard let named = environment["OPENBLAS_CORETYPE"], OpenBLASKernels.replacement(forUnrunnable: named, cpuFlags: cpuFlags) == nil,
              let best = OpenBLASKernels.betterCoreType(than: "Prescott", cpuFlags: cpuFlags),
              let namedRank = OpenBLASKernels.rank(of: named), let bestRank = OpenBLASKernels.rank(of: best), namedRank < bestRank
        else { return nil }
        return "OPENBLAS_CORETYPE=\(named) keeps the matrix products on weaker kernels than this CPU runs (\(best)); unset it to let OpenBLAS use them (training on bench-small ran 1.6 times as fast with them, docs/ml.md).\n"
    }

    /// Restarts this process (same arguments, the environment plus what is missing) when
    /// anything is missing; call it first thing, before any work. Once restarted nothing
    /// is missing, so it restarts at most once. When the restart fails, work goes on as is.
    public static func relaunchIfNeeded() {
        let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flagsLine = cpuInfo.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        let flags = Set(flagsLine.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
        let missing = missingVariables(in: ProcessInfo.processInfo.environment, coreName: OpenBLASKernels.coreName, cpuFlags: flags)
        guard !missing.isEmpty else {
            // Said once: after the restart below, when there is one.
            if let notice = weakerKernelsNotice(in: ProcessInfo.processInfo.environment, cpuFlags: flags) { FileHandle.standardError.write(Data(notice.utf8)) }
            return
        }
        if let named = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], let runnable = missing["OPENBLAS_CORETYPE"] {
            let needed = (OpenBLASKernels.requiredFlags(coreType: named) ?? []).subtracting(flags).sorted().joined(separator: ", ")
            FileHandle.standardError.write(Data(
                "OPENBLAS_CORETYPE=\(named) names kernels this CPU cannot run (it lacks \(needed)); running with \(runnable) instead. Unset it, or set it to what this host has.\n".utf8
            ))
        }
        for (name, value) in missing { setenv(name, value, 1) }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        for name in missing.keys { unsetenv(name) }
    }
}
