import FlowAMQP
import FlowContracts
import FlowCore
import FlowML
import FlowTesting
import Foundation
import Testing

/// The real `flow worker ml` process killed or stopped in the middle of a training job.
@Suite("ML worker processes under signals", .serialized)
struct MLWorkerProcessTests {
    /// The workers run the kernels this test process runs, so their sums round as the
    /// in-process reference's do (the flow command would otherwise pick better ones).
    static let sameKernels = ["OPENBLAS_CORETYPE": OpenBLASKernels.coreName]

    static let training = #"{"max_steps": 400, "save_steps": 10, "save_total_limit": 3, "batch_size": 1, "learning_rate": 0.01, "seed": 3}"#

    /// Starts a worker on a job and sends it `signal` once the job has written its
    /// checkpoint of step 20, far from its 400 steps.
    func startJob(_ setup: WorkerProcessSetup, jobID: String, signal: Int32) async throws -> FlowProcess {
        try MLJobFixtures.prepare(setup.dataFolder)
        let worker = try FlowProcess(setup.workerArguments(concurrency: 1), environment: Self.sameKernels)
        // The checkpoint on disk, not a progress reply: replies can lag behind the trainer
        // on a loaded machine, and the job must still be far from done at the signal.
        let folder = setup.dataFolder.appendingPathComponent("training/\(jobID)")
        let watch = worker.signal(signal, when: {
            (LoRATrainer.newestCheckpoint(in: folder).flatMap { Int($0.lastPathComponent.dropFirst("checkpoint-".count)) } ?? 0) >= 20
        }, timeout: .seconds(120))
        try await setup.send(TrainOrganizationalModel.name, input: MLJobFixtures.trainingInput(jobID: jobID, training: Self.training), messageID: "train-\(jobID)")
        try #require(await watch.ran(), "no checkpoint-20 within two minutes:\n\(worker.log)")
        return worker
    }

    func job(_ setup: WorkerProcessSetup, _ jobID: String) throws -> TrainingJob {
        let data = try Data(contentsOf: setup.dataFolder.appendingPathComponent("training/\(jobID)/job.json"))
        return try FlowJSON.decode(TrainingJob.self, from: data)
    }

    func finish(_ setup: WorkerProcessSetup, jobID: String) async throws -> (FlowProcess, ActivityReply) {
        let worker = try FlowProcess(setup.workerArguments(concurrency: 1), environment: Self.sameKernels)
        try await setup.replies.wait(timeout: .seconds(300)) { !$0.finals(for: "train-\(jobID)").isEmpty }
        return (worker, try #require(await setup.replies.finals(for: "train-\(jobID)").first))
    }

    /// Expects the job's final adapter to be the one an uninterrupted in-process run ends with.
    func expectUninterruptedAdapter(_ setup: WorkerProcessSetup, jobID: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let adapter = try LoRAAdapter(folder: setup.dataFolder.appendingPathComponent("training/\(jobID)"))
        MLJobFixtures.expectSame(adapter, try MLJobFixtures.uninterruptedAdapter(setup.dataFolder, training: Self.training), sourceLocation: sourceLocation)
    }

    /// Stops the workers gracefully and removes the setup.
    func stop(_ workers: [FlowProcess], _ setup: WorkerProcessSetup) async throws {
        for worker in workers {
            worker.signal(SIGTERM)
            _ = try await worker.waitForExit(timeout: .seconds(30))
        }
        await setup.tearDown()
    }

    @Test("a worker killed with SIGKILL mid-job: the redelivered job resumes from its newest checkpoint and ends with the uninterrupted run's adapter")
    func sigkillMidTraining() async throws {
        let setup = try await WorkerProcessSetup.make(queue: .ml)
        let first = try await startJob(setup, jobID: "killed", signal: SIGKILL)
        _ = try await first.waitForExit(timeout: .seconds(30))
        let interrupted = try job(setup, "killed")
        try #require(interrupted.step < 400, "the job finished before the kill")
        #expect(interrupted.state == .running, "the record of a killed worker still says running")

        let (second, reply) = try await finish(setup, jobID: "killed")
        #expect(reply.status == .completed, "\(String(describing: reply.error))\n\(second.log)")
        #expect(second.log.contains("resuming a training job from its newest checkpoint"), "\(second.log)")
        let record = try job(setup, "killed")
        #expect(record.state == .completed)
        #expect(record.deliveries == 2)
        try expectUninterruptedAdapter(setup, jobID: "killed")
        try await stop([second], setup)
    }

    @Test("SIGTERM mid-job: the worker checkpoints, hands the job back to the queue and exits; the next worker finishes it as an uninterrupted run would")
    func sigtermMidTraining() async throws {
        let setup = try await WorkerProcessSetup.make(queue: .ml)
        let first = try await startJob(setup, jobID: "stopped", signal: SIGTERM)
        let status = try await first.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\(first.log)")
        #expect(first.log.contains("handed its message back"), "\(first.log)")
        let stopped = try job(setup, "stopped")
        #expect(stopped.state == .checkpointed)
        let newest = LoRATrainer.newestCheckpoint(in: setup.dataFolder.appendingPathComponent("training/stopped"))
        #expect(newest?.lastPathComponent == "checkpoint-\(stopped.step)", "the checkpoint of the step it stopped after")
        #expect(try await setup.requester.inspectQueue(setup.names.queue(.ml)).messageCount == 1, "the job waits in the queue for the next worker")
        #expect(await setup.replies.finals(for: "train-stopped").isEmpty)

        let (second, reply) = try await finish(setup, jobID: "stopped")
        #expect(reply.status == .completed, "\(String(describing: reply.error))\n\(second.log)")
        try expectUninterruptedAdapter(setup, jobID: "stopped")
        #expect(await setup.replies.finals(for: "train-stopped").count == 1)
        try await stop([second], setup)
    }

    @Test("two deliveries of one job in two worker processes sharing a volume never train at once: the second waits and is answered from the job's record")
    func twoWorkersOneJob() async throws {
        let setup = try await WorkerProcessSetup.make(queue: .ml)
        try MLJobFixtures.prepare(setup.dataFolder)
        let first = try FlowProcess(setup.workerArguments(concurrency: 1), environment: Self.sameKernels)
        let input = MLJobFixtures.trainingInput(jobID: "shared", training: #"{"max_steps": 150, "save_steps": 50, "batch_size": 1, "seed": 5}"#)
        let lock = setup.dataFolder.appendingPathComponent("training/shared/job.lock").path
        // The holder's name is written only once the flock is held; the file alone may exist
        // a moment before that, and a second worker could then still take the lock.
        let pause = first.signal(SIGSTOP, when: { (try? String(contentsOfFile: lock, encoding: .utf8))?.isEmpty == false }, timeout: .seconds(120))
        try await setup.send(TrainOrganizationalModel.name, input: input, messageID: "shared-a")
        // Once the first worker trains the job, it is paused (SIGSTOP, the lock still held) so
        // that it cannot finish before the same job, under another message id, reaches a
        // second worker; then it goes on.
        try #require(await pause.ran(), "the job never took its lock:\n\(first.log)")
        let second = try FlowProcess(setup.workerArguments(concurrency: 1), environment: Self.sameKernels)
        try await setup.send(TrainOrganizationalModel.name, input: input, messageID: "shared-b")
        let refused = await ThreadWatch(when: { second.log.contains("is training in") }, timeout: .seconds(120)).ran()
        first.signal(SIGCONT)
        #expect(refused, "the second delivery never found the job's lock taken:\n\(second.log)")
        try await setup.replies.wait(timeout: .seconds(300)) { !$0.finals(for: "shared-a").isEmpty && !$0.finals(for: "shared-b").isEmpty }
        let a = try #require(await setup.replies.finals(for: "shared-a").first)
        let b = try #require(await setup.replies.finals(for: "shared-b").first)
        #expect(a.status == .completed, "\(first.log)\n\(second.log)")
        #expect(a.output == b.output, "the second is answered with the first's result")
        let record = try job(setup, "shared")
        #expect(record.deliveries == 1, "only one delivery trained the job")
        #expect((first.log + second.log).contains("is training in"), "the second delivery found the job's lock taken")
        try await stop([first, second], setup)
    }
}
