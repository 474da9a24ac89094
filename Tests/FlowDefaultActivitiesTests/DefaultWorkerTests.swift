import FlowAMQP
import FlowContracts
import FlowCore
import FlowDefaultActivities
import FlowRuntime
import FlowTesting
import Foundation
import Testing

@Suite("the default worker over the broker")
struct DefaultWorkerTests {
    @Test("a document processed through the broker replies with its text; a bad path is dead-lettered with the reason")
    func documentsThroughTheBroker() async throws {
        let harness = try await TestWorkerHarness { connection, names, folder in
            DefaultActivities.registry(transport: connection, names: names, dataFolder: DataFolder(folder), workerID: "test")
        }
        let documents = harness.dataFolder.appendingPathComponent("documents")
        try FileManager.default.createDirectory(at: documents, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Repository.file("Tests/FlowDefaultActivitiesTests/Fixtures/review.docx"), to: documents.appendingPathComponent("review.docx"))

        try await harness.send("process_document_upload", input: #"{"path": "documents/review.docx"}"#, messageID: "doc-1")
        let reply = try await harness.finalReply(to: "doc-1")
        #expect(reply.status == .completed)
        let output = try #require(try reply.output?.decode(ProcessDocumentUpload.Output.self))
        #expect(output.text.hasPrefix("Quarterly review"))

        try await harness.send("process_document_upload", input: #"{"path": "../secrets"}"#, messageID: "doc-2")
        let failed = try await harness.finalReply(to: "doc-2")
        #expect(failed.error?.type == "PathOutsideDataFolder")
        #expect(failed.attempt == 1)
        let dead = try #require(try await harness.deadLetters(count: 1).first)
        #expect(dead.properties.headers?[FlowProtocol.Header.errorType]?.stringValue == "PathOutsideDataFolder")
        await harness.shutdown()
    }

    @Test("health_check reports the private queues and the data folder")
    func healthCheck() async throws {
        let harness = try await TestWorkerHarness { connection, names, folder in
            DefaultActivities.registry(transport: connection, names: names, dataFolder: DataFolder(folder), workerID: "test")
        }
        try await harness.send("health_check", input: "{}", messageID: "health-1")
        let reply = try await harness.finalReply(to: "health-1")
        let output = try #require(try reply.output?.decode(HealthCheck.Output.self))
        #expect(output.writable)
        let defaultQueue = try #require(output.queues.first { $0.name == harness.names.queue(.default) })
        #expect(defaultQueue.consumers == 1)
        // No ml or openai worker runs in this test, and the report says so.
        #expect(output.status == "degraded")
        #expect(output.problems.contains { $0.contains("flow worker ml") })
        await harness.shutdown()
    }

    @Test("delegate_training hands a valid job to ml-queue once, however often it is delegated")
    func delegation() async throws {
        let harness = try await TestWorkerHarness { connection, names, folder in
            DefaultActivities.registry(transport: connection, names: names, dataFolder: DataFolder(folder), workerID: "test")
        }
        let model = harness.dataFolder.appendingPathComponent("models/tiny")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: model.appendingPathComponent("config.json"))
        try FileManager.default.createDirectory(at: harness.dataFolder.appendingPathComponent("datasets"), withIntermediateDirectories: true)
        try Data(#"{"text": "hello"}"#.utf8).write(to: harness.dataFolder.appendingPathComponent("datasets/train.jsonl"))

        let input = #"{"job_id": "job-7", "base_model": "models/tiny", "dataset": "datasets/train.jsonl"}"#
        try await harness.send("delegate_training", input: input, messageID: "delegate-1")
        let reply = try await harness.finalReply(to: "delegate-1")
        let output = try #require(try reply.output?.decode(DelegateTraining.Output.self))
        #expect(output.messageID == "training-job-job-7")
        #expect(output.queue == harness.names.queue(.ml))

        let ml = try await harness.requester.consume(queue: harness.names.queue(.ml), prefetch: 1)
        var iterator = ml.makeAsyncIterator()
        let training = try #require(try await iterator.next())
        #expect(training.properties.type == DelegateTraining.trainingActivity)
        #expect(training.properties.messageID == "training-job-job-7")
        try await training.ack()
        ml.cancel()

        try await harness.send("delegate_training", input: #"{"job_id": "job-8", "base_model": "models/missing", "dataset": "datasets/train.jsonl"}"#, messageID: "delegate-2")
        #expect(try await harness.finalReply(to: "delegate-2").error?.type == "ModelNotFound")
        await harness.shutdown()
    }
}

@Suite("the default actor's declarations")
struct DefaultDeclarationsTests {
    @Test("the declarations the command line knows are exactly the activities the worker registers")
    func declarationsMatchRegistry() async throws {
        let connection = try await TestBroker.connect()
        let registry = DefaultActivities.registry(
            transport: connection, names: TopologyNames(), dataFolder: DataFolder(FileManager.default.temporaryDirectory), workerID: "test"
        )
        #expect(registry.names == DefaultContracts.all.map { $0.name }.sorted())
        #expect(DefaultContracts.all.allSatisfy { $0.queue == .default })
        await connection.close()
    }
}
