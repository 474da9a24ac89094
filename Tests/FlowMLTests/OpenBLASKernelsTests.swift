import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("OpenBLAS kernel choice")
struct OpenBLASKernelsTests {
    @Test("a generic kernel on a CPU with AVX-512 or AVX2 asks for SkylakeX or Haswell; a recognised CPU is left alone")
    func betterCoreType() {
        let avx512: Set<String> = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        #expect(OpenBLASKernels.betterCoreType(than: "Prescott", cpuFlags: avx512) == "SkylakeX")
        #expect(OpenBLASKernels.betterCoreType(than: "Prescott", cpuFlags: ["avx", "avx2", "fma"]) == "Haswell")
        #expect(OpenBLASKernels.betterCoreType(than: "Nehalem", cpuFlags: ["avx"]) == "Sandybridge")
        #expect(OpenBLASKernels.betterCoreType(than: "Prescott", cpuFlags: ["sse3"]) == nil)
        #expect(OpenBLASKernels.betterCoreType(than: "Haswell", cpuFlags: avx512) == nil)
        #expect(OpenBLASKernels.betterCoreType(than: "SkylakeX", cpuFlags: avx512) == nil)
    }

    @Test("the environment the engine restarts with adds only what is missing, so it restarts at most once")
    func missingVariables() {
        let avx2: Set<String> = ["avx", "avx2", "fma"]
        let first = EngineEnvironment.missingVariables(in: [:], coreName: "Prescott", cpuFlags: avx2)
        #expect(first["OPENBLAS_CORETYPE"] == "Haswell")
        #expect(first["MALLOC_MMAP_THRESHOLD_"] != nil)
        #expect(EngineEnvironment.missingVariables(in: first, coreName: "Haswell", cpuFlags: avx2).isEmpty)
        #expect(EngineEnvironment.missingVariables(in: ["OPENBLAS_CORETYPE": "Prescott", "MALLOC_MMAP_THRESHOLD_": "1"], coreName: "Prescott", cpuFlags: avx2).isEmpty, "a user's choice stands")
    }

    @Test("kernels named in OPENBLAS_CORETYPE that this CPU cannot run are replaced by the best it can, or by the generic ones; runnable ones stand")
    func unrunnableCoreType() {
        let avx512: Set<String> = ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        let avx2: Set<String> = ["avx", "avx2", "fma"]
        let mallocSet = ["MALLOC_MMAP_THRESHOLD_": "1"]
        #expect(EngineEnvironment.missingVariables(in: mallocSet.merging(["OPENBLAS_CORETYPE": "SkylakeX"]) { $1 }, coreName: "SkylakeX", cpuFlags: avx2) == ["OPENBLAS_CORETYPE": "Haswell"])
        #expect(EngineEnvironment.missingVariables(in: mallocSet.merging(["OPENBLAS_CORETYPE": "SkylakeX"]) { $1 }, coreName: "SkylakeX", cpuFlags: avx512).isEmpty)
        #expect(EngineEnvironment.missingVariables(in: mallocSet.merging(["OPENBLAS_CORETYPE": "Zen"]) { $1 }, coreName: "Zen", cpuFlags: ["sse3"]) == ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(EngineEnvironment.missingVariables(in: mallocSet.merging(["OPENBLAS_CORETYPE": "Haswell"]) { $1 }, coreName: "Haswell", cpuFlags: avx2).isEmpty)
        #expect(OpenBLASKernels.replacement(forUnrunnable: "SomeFutureFamily", cpuFlags: []) == nil, "a family whose needs are unknown stands")
    }

    @Test("a runnable OPENBLAS_CORETYPE weaker than this CPU's best stands, with a notice naming the better family; the best, or none, says nothing")
    func weakerKernelsNotice() {
        let avx512: Set<String> = ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        let avx2: Set<String> = ["avx", "avx2", "fma"]
        let notice = EngineEnvironment.weakerKernelsNotice(in: ["OPENBLAS_CORETYPE": "Haswell"], cpuFlags: avx512)
        #expect(notice?.contains("OPENBLAS_CORETYPE=Haswell") == true && notice?.contains("SkylakeX") == true, "\(notice ?? "no notice")")
        #expect(EngineEnvironment.weakerKernelsNotice(in: ["OPENBLAS_CORETYPE": "Haswell"], cpuFlags: avx2) == nil)
        #expect(EngineEnvironment.weakerKernelsNotice(in: ["OPENBLAS_CORETYPE": "SkylakeX"], cpuFlags: avx512) == nil)
        #expect(EngineEnvironment.weakerKernelsNotice(in: [:], cpuFlags: avx512) == nil)
        // Unrunnable is another case: it is replaced, with its own message.
        #expect(EngineEnvironment.weakerKernelsNotice(in: ["OPENBLAS_CORETYPE": "SkylakeX"], cpuFlags: avx2) == nil)
    }

    @Test("the flow command runs its ML work on the best kernels this CPU has")
    func flowPicksBetterKernels() async throws {
        let result = try await ProcessRunner.run(Repository.flowExecutable.path, ["ml", "kernels"])
        #expect(result.status == 0, "\(result.standardError)")
        let cpuHasAVX2 = (try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)).contains(" avx2")
        let core = result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        if cpuHasAVX2 { #expect(!["Prescott", "Core2", "Nehalem"].contains(core), "generic kernels on a CPU with AVX2: \(core)") }
    }
}
