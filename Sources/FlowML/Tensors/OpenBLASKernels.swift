import COpenBLAS
import Foundation

/// Which of OpenBLAS's kernel families runs the engine's products.
///
/// Debian's OpenBLAS picks a kernel family per CPU model when it loads. On a virtual
/// machine whose CPU model it does not recognise ("Intel Xeon Processor") it falls back to
/// the generic Prescott kernels, which use none of AVX2 or AVX-512 and run several times
/// slower. `OPENBLAS_CORETYPE` overrides the choice, but OpenBLAS reads it only when it
/// loads, so ``EngineEnvironment`` restarts the process with it set.
public enum OpenBLASKernels {
    /// The kernel family OpenBLAS chose ("SkylakeX", "Haswell", "Prescott").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The family to ask for when OpenBLAS chose a generic one for a CPU with better
    /// instructions (from `/proc/cpuinfo`'s flags), else nil.
    public static func betterCoreType(than coreName: String, cpuFlags: Set<String>) -> String? {
        let generic: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine", "northwood", "banias", "unknown"]
        guard generic.contains(coreName.lowercased()) else { return nil }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        if cpuFlags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// The CPU flags a named kernel family's instructions need, for the families whose
    /// needs are known; nil for the others. OpenBLAS does not check a family it is told to
    /// use: on a CPU without them, its first product dies of SIGILL.
    public static func requiredFlags(coreType: String) -> Set<String>? {
        switch coreType.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        case "haswell", "zen": ["avx2", "fma"]
        case "sandybridge": ["avx"]
        default: nil
        }
    }

    /// How strong a family's instructions are, for comparing two: generic 0, AVX 1, AVX2
    /// and FMA 2, AVX-512 3; nil for a family this does not know.
    public static func rank(of coreType: String) -> Int? {
        switch coreType.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": 3
        case "haswell", "zen": 2
        case "sandybridge": 1
        case "prescott", "core2", "penryn", "nehalem": 0
        default: nil
        }
    }

    /// The family to use instead of `coreType` when this CPU (by `cpuFlags`) cannot run
    /// it: the best it can, or the generic Prescott kernels; nil when `coreType` can run.
    public static func replacement(forUnrunnable coreType: String, cpuFlags: Set<String>) -> String? {
        guard let needed = requiredFlags(coreType: coreType), !cpuFlags.isSuperset(of: needed) else { return nil }
        return betterCoreType(than: "Prescott", cpuFlags: cpuFlags) ?? "Prescott"
    }
}
