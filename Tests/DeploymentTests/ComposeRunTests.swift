import FlowTesting
import Foundation
import Testing

/// compose.yaml run for real: `scripts/compose-check` builds the images offline, starts
/// every service under podman-compose, runs echo_chain and document_onboarding from this
/// host, SIGKILLs worker-default mid-run and stops it all (docs/containers.md).
@Suite("compose.yaml under podman", .serialized)
struct ComposeRunTests {
    @Test("the services start healthy, run workflows through a worker's SIGKILL and stop cleanly", .timeLimit(.minutes(20)))
    func composeCheck() async throws {
        let flow = Repository.flowExecutable.path
        let result = try await ExclusiveTests.run {
            try await onOwnThread {
                try ProcessRunner.run(Repository.file("scripts/compose-check").path, ["--flow", flow])
            }
        }
        let output = result.standardOutput
        #expect(result.status == 0, "scripts/compose-check failed:\n\(output)\n\(result.standardError)")
        #expect(output.contains("every service healthy"))
        #expect(output.contains("restarted by its restart policy and healthy again"))
        #expect(output.contains("echo_chain completed"))
        #expect(output.contains("document_onboarding parked on its analysis"))
        for service in ["broker", "broker-definitions", "worker-default", "worker-ml", "worker-openai", "coordinator"] {
            let line = output.split(separator: "\n").first { $0.hasPrefix("compose-check:   \(service) ") }
            #expect(line?.split(separator: " ").last == "0", "\(service) did not exit 0 when stopped: \(line ?? "no line")")
        }
    }

    @Test("with compose.cluster.yaml, SIGKILLing the broker node that leads default-queue loses no workflow, and the node rejoins", .timeLimit(.minutes(20)))
    func composeClusterCheck() async throws {
        let flow = Repository.flowExecutable.path
        let result = try await ExclusiveTests.run {
            try await onOwnThread {
                try ProcessRunner.run(Repository.file("scripts/compose-check").path, ["--cluster", "--flow", flow])
            }
        }
        let output = result.standardOutput
        #expect(result.status == 0, "scripts/compose-check --cluster failed:\n\(output)\n\(result.standardError)")
        #expect(output.contains("three broker nodes in one cluster"))
        #expect(output.contains("all ten echo_chain workflows completed"))
        #expect(output.contains("rejoined: three running nodes"))
        #expect(output.contains("nothing dead-lettered"))
        for service in ["broker", "broker-2", "broker-3", "worker-default", "worker-ml", "worker-openai", "coordinator"] {
            let line = output.split(separator: "\n").first { $0.hasPrefix("compose-check:   \(service) ") }
            #expect(line?.split(separator: " ").last == "0", "\(service) did not exit 0 when stopped: \(line ?? "no line")")
        }
    }
}
