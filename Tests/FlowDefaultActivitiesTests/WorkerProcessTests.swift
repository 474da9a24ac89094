import FlowAMQP
import FlowCore
import FlowObservability
import FlowTesting
import Foundation
import Testing

/// The real `flow worker default` process under SIGTERM and SIGKILL, on a private topology.
@Suite("worker processes under signals", .serialized)
struct WorkerProcessTests {
    typealias Setup = WorkerProcessSetup

    @Test("SIGTERM during a burst loses nothing: every request is answered, by this worker or the next")
    func sigtermDuringBurst() async throws {
        let setup = try await Setup.make(queue: .default)
        let first = try FlowProcess(setup.workerArguments)
        let total = 300
        for index in 0..<total {
            try await setup.send("storage_put", input: #"{"text": "burst item \#(index)"}"#, messageID: "burst-\(index)")
        }
        try await setup.replies.wait { $0.completedIDs.count >= 30 }
        first.signal(SIGTERM)
        let status = try await first.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "the worker should exit cleanly on SIGTERM; its log:\n\(first.log)")
        #expect(first.log.contains("worker stopped"))

        let second = try FlowProcess(setup.workerArguments)
        try await setup.replies.wait(timeout: .seconds(60)) { $0.completedIDs.count >= total }
        let completed = await setup.replies.completedIDs
        #expect(completed == Set((0..<total).map { "burst-\($0)" }))
        #expect(await setup.replies.failedCount == 0)
        // Deliveries the first worker held unstarted went back to the queue on shutdown and
        // may reach the second worker after their first copy completed: those are answered
        // from the store. Let it drain them before stopping it.
        let queue = setup.names.queue(.default)
        let drainDeadline = ContinuousClock.now + .seconds(20)
        while try await setup.requester.inspectQueue(queue).messageCount > 0, ContinuousClock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        // A process signalled before it installs its handlers dies of the signal.
        let startDeadline = ContinuousClock.now + .seconds(60)
        while !second.log.contains("worker started"), ContinuousClock.now < startDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        second.signal(SIGTERM)
        let secondExit = try await second.waitForExit(timeout: .seconds(60))
        #expect(secondExit == 0, "the second worker should stop cleanly on SIGTERM (exit status \(secondExit.map(String.init) ?? "none: still running")); the end of its log:\n\(second.log.suffix(6000))")
        // A graceful stop returns deliveries the worker had received but not started; the
        // queue's ready count cannot see those in the drain above. Here they can only be
        // copies of requests already answered.
        let leftovers = try await setup.takeAll(from: queue)
        #expect(leftovers.isSubset(of: completed), "a request left in the queue was never answered: \(leftovers.subtracting(completed))")
        #expect(try await setup.requester.inspectQueue(setup.names.deadLetterQueue).messageCount == 0)
        await setup.tearDown()
    }

    @Test("a worker killed with SIGKILL mid-activity has its message redelivered and completed by the next worker")
    func sigkillMidActivity() async throws {
        let setup = try await Setup.make(queue: .default)
        // A CSV big enough that extracting it takes a while in the worker.
        let documents = setup.dataFolder.appendingPathComponent("documents")
        try FileManager.default.createDirectory(at: documents, withIntermediateDirectories: true)
        var csv = "id,name,notes\n"
        for row in 0..<300_000 { csv += "\(row),name \(row),\"note, with comma \(row)\"\n" }
        try Data(csv.utf8).write(to: documents.appendingPathComponent("big.csv"))

        let first = try FlowProcess(setup.workerArguments)
        try await setup.send("process_document_upload", input: #"{"path": "documents/big.csv"}"#, messageID: "big-1")
        // Delivered to the worker once the queue shows no ready message.
        let queue = setup.names.queue(.default)
        let deadline = ContinuousClock.now + .seconds(20)
        while try await setup.requester.inspectQueue(queue).messageCount > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        try await Task.sleep(for: .milliseconds(100))
        first.signal(SIGKILL)
        _ = try await first.waitForExit(timeout: .seconds(10))
        let answeredBeforeKill = await setup.replies.completedIDs.contains("big-1")

        let second = try FlowProcess(setup.workerArguments)
        try await setup.replies.wait(timeout: .seconds(90)) { $0.completedIDs.contains("big-1") }
        let replies = await setup.replies.finals(for: "big-1")
        #expect(replies.allSatisfy { $0 == replies[0] }, "every final reply to one message id must be the same")
        let output = try #require(replies.first?.output?.text)
        #expect(output.contains(#""rows":"300000""#))
        second.signal(SIGTERM)
        _ = try await second.waitForExit(timeout: .seconds(30))
        // The first worker may have completed it (reply confirmed, delivery acknowledged) an
        // instant before the kill, with its reply still on the way to us; otherwise the
        // second worker must have handled the redelivery. Its log is read once it has
        // exited: the worker logs the completion after it publishes the reply.
        let firstCompleted = first.log.contains("activity completed")
        if !answeredBeforeKill, !firstCompleted {
            #expect(second.log.contains("activity completed") || second.log.contains("answering from the store"), "the second worker should have handled the redelivery:\n\(second.log)")
        }
        await setup.tearDown()
    }
}

/// Two copies of a worker "on two hosts": their own data folders, one PostgreSQL activity
/// store (`--activity-store`).
@Suite("worker copies sharing a PostgreSQL activity store", .serialized)
struct SharedActivityStoreTests {
    /// The setup's worker arguments with another data folder: the second host's.
    func arguments(_ setup: WorkerProcessSetup, dataFolder: URL, store: String) -> [String] {
        var arguments = setup.workerArguments(extra: ["--activity-store", store])
        arguments[arguments.firstIndex(of: "--data-dir")! + 1] = dataFolder.path
        return arguments
    }

    @Test("a redelivery that reaches the copy on the other host is answered from the shared store, not run again")
    func redeliveryAnsweredAcrossHosts() async throws {
        let setup = try await WorkerProcessSetup.make(queue: .default)
        let store = try await TestPostgres.newDatabase().url
        let otherHost = setup.dataFolder.appendingPathComponent("other-host")

        let first = try FlowProcess(arguments(setup, dataFolder: setup.dataFolder.appendingPathComponent("first-host"), store: store))
        try await setup.send("echo", input: #"{"text": "once"}"#, messageID: "shared-1")
        try await setup.replies.wait(timeout: .seconds(30)) { $0.completedIDs.contains("shared-1") }
        first.signal(SIGTERM)
        _ = try await first.waitForExit(timeout: .seconds(30))
        #expect(first.log.contains("activity completed"))

        // The same message again (a coordinator's re-send, or the broker's redelivery after
        // the first host died before its acknowledgement), now reaching the other host.
        let second = try FlowProcess(arguments(setup, dataFolder: otherHost, store: store))
        try await setup.send("echo", input: #"{"text": "once"}"#, messageID: "shared-1")
        try await setup.replies.wait(timeout: .seconds(30)) { $0.finals(for: "shared-1").count >= 2 }
        second.signal(SIGTERM)
        _ = try await second.waitForExit(timeout: .seconds(30))
        let finals = await setup.replies.finals(for: "shared-1")
        #expect(finals.count == 2 && finals[0] == finals[1], "the second answer is the first, from the store: \(finals)")
        #expect(second.log.contains("answering from the store"), "\(second.log)")
        #expect(!second.log.contains("activity completed"), "the other host ran it again:\n\(second.log)")
        #expect(!FileManager.default.fileExists(atPath: otherHost.appendingPathComponent("state/default-activities.sqlite").path), "no SQLite store when a shared one is named")
        await setup.tearDown()
    }
}

@Suite("the flow command line against a running worker", .serialized)
struct CommandLineTests {
    private func get(_ url: String) async throws -> (Int, String) {
        let result = try await ProcessRunner.run("/usr/bin/env", ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url])
        let lines = result.standardOutput.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    @Test("flow activity run prints the output, exits 1 with the reason on failure, and /readyz and /metrics tell the truth")
    func activityRunAndMetrics() async throws {
        let setup = try await WorkerProcessTests.Setup.make(queue: .default)
        var arguments = setup.workerArguments
        arguments[arguments.firstIndex(of: "--metrics-port")! + 1] = "0"
        let worker = try FlowProcess(arguments)
        let port = try #require(try await worker.servingPort(), "the worker never served health:\n\(worker.log)")
        var ready = (0, "")
        for _ in 0..<100 {
            ready = try await get("http://127.0.0.1:\(port)/readyz")
            if ready.0 == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(ready.0 == 200)
        #expect(ready.1.contains("consuming \(setup.names.queue(.default))"))
        #expect(try await get("http://127.0.0.1:\(port)/healthz").0 == 200)

        let flow = Repository.flowExecutable.path
        let prefix = ["--topology-prefix", setup.names.prefix!, "--amqp-url", TestBroker.url]
        let ok = try await ProcessRunner.run(flow, ["activity", "run", "storage_put", "--input", #"{"text": "cli"}"#] + prefix)
        #expect(ok.status == 0, "\(ok.standardError)")
        #expect(ok.standardOutput.contains(#""blob_id":"sha256:"#))
        let failed = try await ProcessRunner.run(flow, ["activity", "run", "storage_get", "--input", #"{"blob_id": "nope"}"#] + prefix)
        #expect(failed.status == 1)
        #expect(failed.standardError.contains("InvalidBlobID"))

        let metrics = try await get("http://127.0.0.1:\(port)/metrics")
        #expect(metrics.0 == 200)
        let scraped = PrometheusText(metrics.1)
        let queue = ["messaging_destination_name": setup.names.queue(.default)]
        #expect(scraped.types["flow_activity_outcomes_total"] == "counter")
        #expect(scraped.types["messaging_process_duration_seconds"] == "histogram")
        #expect(scraped.sum("flow_activity_outcomes_total", matching: queue.merging(["flow_activity_name": "storage_put", "flow_outcome": "completed"]) { $1 }) == 1)
        #expect(scraped.sum("flow_activity_outcomes_total", matching: queue.merging(["flow_activity_name": "storage_get", "flow_outcome": "dead_lettered"]) { $1 }) == 1)
        #expect(scraped.sum("flow_dead_letters_total", matching: ["flow_activity_name": "storage_get", "error_type": "InvalidBlobID"]) == 1, "\(metrics.1)")
        #expect(scraped.sum("messaging_process_duration_seconds_count", matching: ["flow_activity_name": "storage_put", "flow_outcome": "completed"]) == 1)

        worker.signal(SIGTERM)
        #expect(try await worker.waitForExit(timeout: .seconds(30)) == 0)
        await setup.tearDown()
    }

    @Test("a second copy of a worker on one host serves health and metrics on a free port and says which; a port the user chose that is busy is an error")
    func copiesOnOneHost() async throws {
        let setup = try await WorkerProcessTests.Setup.make(queue: .default)
        var arguments = setup.workerArguments
        let flag = arguments.firstIndex(of: "--metrics-port")!
        arguments.removeSubrange(flag...(flag + 1))
        let first = try FlowProcess(arguments)
        let firstPort = try #require(try await first.servingPort(), "the first copy never served:\n\(first.log)")
        let second = try FlowProcess(arguments)
        let secondPort = try #require(try await second.servingPort(), "the second copy never served:\n\(second.log)")
        #expect(firstPort != secondPort)
        #expect(second.log.contains("port is taken"), "\(second.log)")
        #expect(try await get("http://127.0.0.1:\(firstPort)/healthz").0 == 200)
        #expect(try await get("http://127.0.0.1:\(secondPort)/healthz").0 == 200)

        var chosen = setup.workerArguments
        chosen[chosen.firstIndex(of: "--metrics-port")! + 1] = "\(firstPort)"
        let third = try FlowProcess(chosen)
        let status = try await third.waitForExit(timeout: .seconds(30))
        #expect(status != nil && status != 0, "a busy port the user chose must stop the worker:\n\(third.log)")
        #expect(third.log.contains("cannot serve health and metrics on 127.0.0.1:\(firstPort)"), "\(third.log)")

        for worker in [first, second] {
            worker.signal(SIGTERM)
            #expect(try await worker.waitForExit(timeout: .seconds(30)) == 0)
        }
        await setup.tearDown()
    }
}
