import FlowContracts
import FlowCore
import FlowDefaultActivities
import FlowRuntime
import FlowTesting
import Foundation
import Logging
import Testing

/// A data folder holding copies of the committed fixtures under `documents/`.
struct FixtureFolder {
    let folder: DataFolder

    init() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flow-docs-\(UUID().uuidString.prefix(8))")
        let documents = root.appendingPathComponent("documents")
        try FileManager.default.createDirectory(at: documents, withIntermediateDirectories: true)
        let fixtures = Repository.file("Tests/FlowDefaultActivitiesTests/Fixtures")
        for name in try FileManager.default.contentsOfDirectory(atPath: fixtures.path) where !name.hasSuffix(".py") {
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent(name), to: documents.appendingPathComponent(name))
        }
        folder = DataFolder(root)
    }

    func remove() { try? FileManager.default.removeItem(at: folder.root) }
}

func testContext(_ activity: String = "test", attempt: Int = 1) -> ActivityContext {
    ActivityContext(
        messageID: UUID().uuidString, activity: activity, attempt: attempt, deadline: .now + .seconds(60), workflowID: nil,
        lastHeartbeatDetails: nil, logger: TestBroker.logger, progressReporter: { _ in }
    )
}

@Suite("process_document_upload on real files")
struct DocumentTests {
    private func extract(_ path: String, in fixtures: FixtureFolder) async throws -> ProcessDocumentUpload.Output {
        try await ProcessDocumentUploadActivity(dataFolder: fixtures.folder).run(.init(path: path), context: testContext())
    }

    @Test("DOCX: paragraphs, tabs and the title from its core properties")
    func docx() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let output = try await extract("documents/review.docx", in: fixtures)
        #expect(output.format == .docx)
        #expect(output.text == "Quarterly review\nRevenue grew 12 percent.\nName\tOwner")
        #expect(output.metadata["title"] == "Q3 Review")
        #expect(output.metadata["author"] == "Finance")
        #expect(output.metadata["paragraphs"] == "3")
    }

    @Test("PDF through pdftotext: the text of every page and the page count")
    func pdf() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let output = try await extract("documents/report.pdf", in: fixtures)
        #expect(output.format == .pdf)
        #expect(output.text.contains("Annual report page one"))
        #expect(output.text.contains("Risks and decisions on page two"))
        #expect(output.metadata["pages"] == "2")
        #expect(output.metadata["title"] == "Fixture Report")
    }

    @Test("HTML: text without markup, scripts, styles and comments, entities decoded")
    func html() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let output = try await extract("documents/page.html", in: fixtures)
        #expect(output.metadata["title"] == "Release notes & plans")
        #expect(output.text.contains("Release 2.0"))
        #expect(output.text.contains("Faster workers — and fewer retries."))
        #expect(output.text.contains("Item <two>"))
        #expect(!output.text.contains("secret"))
        #expect(!output.text.contains("color"))
        #expect(!output.text.contains("internal comment"))
    }

    @Test("CSV: quoted fields with commas, doubled quotes and newlines, as column: value lines")
    func csv() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let output = try await extract("documents/people.csv", in: fixtures)
        #expect(output.metadata["rows"] == "2")
        #expect(output.metadata["columns"] == "name,team,notes")
        #expect(output.text.hasPrefix(#"name: Ada; team: ML; notes: likes "quotes", commas"#))
        #expect(output.text.contains("notes: two\nlines"))
    }

    @Test("JSON and Markdown keep their text and report their shape and title")
    func jsonAndMarkdown() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let json = try await extract("documents/meta.json", in: fixtures)
        #expect(json.metadata["keys"] == "project,tags")
        let markdown = try await extract("documents/plan.md", in: fixtures)
        #expect(markdown.metadata["title"] == "Plan")
        #expect(markdown.words == 9)
        #expect(markdown.textBlobID.hasPrefix("sha256:"))
    }

    @Test("corrupt DOCX and PDF files fail non-retryably with the reason")
    func corruptFiles() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        for name in ["corrupt.docx", "corrupt.pdf"] {
            let failure = await #expect(throws: ActivityFailure.self) { try await extract("documents/\(name)", in: fixtures) }
            #expect(failure?.type == "CorruptDocument")
            #expect(failure?.retryable == false)
            #expect(failure?.message.contains(name) == true)
        }
    }

    @Test("paths that leave the data folder are refused")
    func pathEscapes() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        for path in ["../../etc/passwd", "/etc/passwd", "documents/../../outside.txt"] {
            let failure = await #expect(throws: ActivityFailure.self) { try await extract(path, in: fixtures) }
            #expect(failure?.type == "PathOutsideDataFolder")
        }
        // A symbolic link inside the folder that points outside is refused as well.
        let link = fixtures.folder.documents.appendingPathComponent("sneaky.txt")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "/etc/hostname")
        let failure = await #expect(throws: ActivityFailure.self) { try await extract("documents/sneaky.txt", in: fixtures) }
        #expect(failure?.type == "PathOutsideDataFolder")
    }
}

@Suite("parse_document")
struct ParseDocumentTests {
    @Test("sections follow Markdown headings and chunks respect the size, breaking at paragraphs")
    func sectionsAndChunks() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let paragraph = String(repeating: "Budget lines are reviewed every week. ", count: 8)
        let text = "# Plan\n\n\(paragraph)\n\n\(paragraph)\n\n## Risks\n\nShort risk section.\n"
        let output = try await ParseDocumentActivity(dataFolder: fixtures.folder).run(.init(text: text, chunkSize: 400, chunkOverlap: 0), context: testContext())
        #expect(output.sections.map(\.title) == ["Plan", "Risks"])
        #expect(output.chunks.allSatisfy { $0.characters <= 400 })
        #expect(output.chunkCount == output.chunks.count)
        #expect(output.chunks.last?.section == 1)
        #expect(output.chunks.last?.text == "## Risks\n\nShort risk section.")
        // The first section's chunks together hold all of its words.
        let firstSection = output.chunks.filter { $0.section == 0 }.map(\.text).joined(separator: " ")
        #expect(firstSection.components(separatedBy: "reviewed").count - 1 == 16)
    }

    @Test("a chunk size too small to be useful is refused")
    func tinyChunks() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let failure = await #expect(throws: ActivityFailure.self) {
            _ = try await ParseDocumentActivity(dataFolder: fixtures.folder).run(.init(text: "x", chunkSize: 10), context: testContext())
        }
        #expect(failure?.type == "InvalidInput")
    }
}

@Suite("storage and cleanup")
struct StorageTests {
    @Test("the blob store is content-addressed: same content, same id; get returns it; delete removes it")
    func blobs() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let put = try await StoragePutActivity(dataFolder: fixtures.folder).run(.init(text: "hello blobs"), context: testContext())
        let again = try await StoragePutActivity(dataFolder: fixtures.folder).run(.init(base64: Data("hello blobs".utf8).base64EncodedString()), context: testContext())
        #expect(put.blobID == again.blobID)
        // sha256sum of "hello blobs"
        #expect(put.blobID == "sha256:0e4ab7734cca19155d6d73d4f04defe5381f3376d6c237ea52087aab31f2ccab")
        let got = try await StorageGetActivity(dataFolder: fixtures.folder).run(.init(blobID: put.blobID), context: testContext())
        #expect(got.text == "hello blobs")
        let listed = try await StorageListActivity(dataFolder: fixtures.folder).run(Empty(), context: testContext())
        #expect(listed.blobs.map(\.blobID) == [put.blobID])
        #expect(try await StorageDeleteActivity(dataFolder: fixtures.folder).run(.init(blobID: put.blobID), context: testContext()).deleted)
        #expect(try await StorageDeleteActivity(dataFolder: fixtures.folder).run(.init(blobID: put.blobID), context: testContext()).deleted == false)
    }

    @Test("blob ids that are not sha256 digests are refused, so they cannot name other files")
    func badBlobIDs() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        for blobID in ["../../etc/passwd", "sha256:../../x", "sha256:ABC", "md5:0123"] {
            let failure = await #expect(throws: ActivityFailure.self) {
                _ = try await StorageGetActivity(dataFolder: fixtures.folder).run(.init(blobID: blobID), context: testContext())
            }
            #expect(failure?.type == "InvalidBlobID")
        }
    }

    @Test("cleanup removes only files past the retention period, and dry run removes nothing")
    func cleanup() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let old = fixtures.folder.temporary.appendingPathComponent("old.tmp")
        let fresh = fixtures.folder.temporary.appendingPathComponent("fresh.tmp")
        try FileManager.default.createDirectory(at: fixtures.folder.temporary, withIntermediateDirectories: true)
        try Data(repeating: 1, count: 100).write(to: old)
        try Data(repeating: 2, count: 50).write(to: fresh)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-10 * 86_400)], ofItemAtPath: old.path)

        let cleanup = CleanupStorageActivity(dataFolder: fixtures.folder)
        let dryRun = try await cleanup.run(.init(retentionDays: 7, dryRun: true), context: testContext())
        #expect(dryRun.removed.map(\.path) == ["tmp/old.tmp"])
        #expect(FileManager.default.fileExists(atPath: old.path))

        let real = try await cleanup.run(.init(retentionDays: 7), context: testContext())
        #expect(real.removed == [.init(path: "tmp/old.tmp", bytes: 100)])
        #expect(real.freedBytes == 100)
        #expect(!FileManager.default.fileExists(atPath: old.path))
        #expect(FileManager.default.fileExists(atPath: fresh.path))
    }

    @Test("cleanup removes the old checkpoints of finished training jobs only, and keeps their records and final adapters")
    func cleanupTrainingCheckpoints() async throws {
        let fixtures = try FixtureFolder()
        defer { fixtures.remove() }
        let longAgo = Date().addingTimeInterval(-40 * 86_400)
        var files: [URL] = []
        for (name, state) in [("done", TrainingJob.State.completed), ("paused", .checkpointed)] {
            let job = fixtures.folder.root.appendingPathComponent("training/\(name)")
            try FileManager.default.createDirectory(at: job.appendingPathComponent("checkpoint-10"), withIntermediateDirectories: true)
            let record = TrainingJob(jobID: name, state: state, request: .init(jobID: name, baseModel: "models/base", dataset: "d.jsonl"))
            try FlowJSON.prettyEncoder.encode(record).write(to: job.appendingPathComponent("job.json"))
            try Data(repeating: 3, count: 10).write(to: job.appendingPathComponent("checkpoint-10/adapter_model.safetensors"))
            try Data(repeating: 4, count: 20).write(to: job.appendingPathComponent("adapter_model.safetensors"))
            files += [job.appendingPathComponent("job.json"), job.appendingPathComponent("checkpoint-10/adapter_model.safetensors"), job.appendingPathComponent("adapter_model.safetensors")]
        }
        for file in files { try FileManager.default.setAttributes([.modificationDate: longAgo], ofItemAtPath: file.path) }

        let result = try await CleanupStorageActivity(dataFolder: fixtures.folder).run(.init(retentionDays: 30, areas: [.checkpoints]), context: testContext())
        #expect(result.removed.map(\.path) == ["training/done/checkpoint-10/adapter_model.safetensors"])
        let training = fixtures.folder.root.appendingPathComponent("training")
        #expect(!FileManager.default.fileExists(atPath: training.appendingPathComponent("done/checkpoint-10").path))
        #expect(FileManager.default.fileExists(atPath: training.appendingPathComponent("done/adapter_model.safetensors").path))
        #expect(FileManager.default.fileExists(atPath: training.appendingPathComponent("done/job.json").path))
        #expect(FileManager.default.fileExists(atPath: training.appendingPathComponent("paused/checkpoint-10/adapter_model.safetensors").path), "a job that may continue keeps its checkpoints")
    }
}
