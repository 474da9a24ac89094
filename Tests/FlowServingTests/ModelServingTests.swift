import FlowCore
import FlowServing
import FlowTesting
import Foundation
import Testing

/// `flow ml serve` as a process, checked with the official `openai` Python client, and
/// against `flow ml generate` token for token.
@Suite("flow ml serve", .serialized)
struct ModelServingTests {
    func flow(_ arguments: [String]) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try ProcessRunner.run(Repository.flowExecutable.path, arguments) })
            }
        }
    }

    /// A random model with the tests' byte-level tokenizer, and an adapter trained on it for
    /// three steps at a learning rate high enough that it answers differently.
    func modelAndAdapter(in folder: URL) async throws -> (model: URL, adapter: URL) {
        let model = folder.appendingPathComponent("base")
        let made = try await flow(["ml", "init-model", "--output", model.path, "--tokenizer", Repository.file("Tests/FlowMLTests/Fixtures/byte-level.tokenizer.json").path])
        #expect(made.status == 0, "\(made.standardError)")
        let data = folder.appendingPathComponent("data.jsonl")
        try #"""
            {"text": "The report says the numbers rose."}
            {"text": "Onboarding documents are ready for review."}
            {"text": "The organisation's model learns its own words."}
            """#.write(to: data, atomically: true, encoding: .utf8)
        let adapter = folder.appendingPathComponent("adapter")
        let trained = try await flow(["ml", "train", "--model", model.path, "--data", data.path, "--output", adapter.path, "--steps", "3", "--lr", "0.05", "--batch-size", "2"])
        #expect(trained.status == 0, "\(trained.standardError)")
        return (model, adapter)
    }

    @Test("the official openai client lists the models, chats (streamed too, with stop sequences), completes, and reads the API's errors; a seeded answer is flow ml generate's, token for token")
    func officialClient() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-serve-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (model, adapter) = try await modelAndAdapter(in: folder)
        let server = try FlowProcess(["ml", "serve", "--model", model.path, "--name", "base", "--adapter", "onboarding=\(adapter.path)", "--port", "0"])
        try await waitUntil(timeout: .seconds(60)) { server.log.contains("serving: http://") }
        let url = try #require(server.log.split(separator: "\n").first { $0.hasPrefix("serving: ") }?.split(separator: " ")[1]).description

        let checked = try await ProcessRunner.run("/usr/bin/env", ["python3", Repository.file("Tests/FlowServingTests/openai_client_check.py").path], environment: [
            "SERVE_URL": url, "BASE": "base", "ADAPTER": "onboarding",
            "ANALYSIS_SCHEMA": Repository.file("Sources/FlowOpenAIActivities/Prompts/schemas/document_analysis.json").path,
        ])
        #expect(checked.status == 0, "\(checked.standardOutput)\n\(checked.standardError)\nserver:\n\(server.log.suffix(2000))")
        let report = try FlowJSON.decode(JSONValue.self, from: checked.standardOutput.split(separator: "\n").last.map(String.init) ?? "{}")
        #expect(report["stopped"]?.boolValue == true, "the greedy answer had no clean text to stop at: \(report)")
        #expect(report["structured"]?.boolValue == true)
        #expect(report["greedy"] != report["base"], "the adapter answers as the base does: \(report)")
        #expect(report["unknown_model"]?.stringValue?.contains("This server serves: base, onboarding") == true)

        // The same request through `flow ml generate`: the same tokens, so the same text.
        let messages = #"[{"role": "system", "content": "You summarise."}, {"role": "user", "content": "The report says the numbers rose."}]"#
        let generated = try await flow([
            "ml", "generate", "--model", model.path, "--adapter", adapter.path, "--messages", messages, "--max-new-tokens", "12", "--temperature", "0.8", "--seed", "7",
        ])
        #expect(generated.status == 0, "\(generated.standardError)")
        #expect(String(generated.standardOutput.dropLast()) == report["sampled"]?.stringValue, "served: \(report["sampled"] ?? .null)\ngenerated: \(generated.standardOutput)")

        server.signal(SIGTERM)
        #expect(try await server.waitForExit(timeout: .seconds(20)) == 0, "\(server.log)")
    }

    @Test("an adapter that finished training is served without a restart, and bad requests get the API's errors: a malformed body, one too large, a full queue")
    func adaptersAndRefusals() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-serve-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (model, adapter) = try await modelAndAdapter(in: folder)
        let server = try FlowProcess(["ml", "serve", "--model", model.path, "--port", "0", "--queue", "1"])
        try await waitUntil(timeout: .seconds(60)) { server.log.contains("serving: http://") }
        let url = try #require(server.log.split(separator: "\n").first { $0.hasPrefix("serving: ") }?.split(separator: " ")[1]).description
        func curl(_ arguments: [String]) async throws -> ProcessOutput { try await ProcessRunner.run("/usr/bin/curl", ["-sS", "-i"] + arguments) }

        let loaded = try await curl(["-d", #"{"lora_name": "fresh", "lora_path": "\#(adapter.path)"}"#, "\(url)/load_lora_adapter"])
        #expect(loaded.standardOutput.contains("200") && loaded.standardOutput.contains("added successfully"), "\(loaded.standardOutput)")
        #expect(try await curl(["\(url)/models"]).standardOutput.contains(#""id":"fresh""#))
        let badPath = try await curl(["-d", #"{"lora_name": "broken", "lora_path": "/nowhere"}"#, "\(url)/load_lora_adapter"])
        #expect(badPath.standardOutput.contains("400") && badPath.standardOutput.contains(#""param":"lora_path""#), "\(badPath.standardOutput)")

        let malformed = try await curl(["-d", "{not json", "\(url)/chat/completions"])
        #expect(malformed.standardOutput.hasPrefix("HTTP/1.1 400") && malformed.standardOutput.contains("could not parse the JSON body"), "\(malformed.standardOutput)")
        let huge = folder.appendingPathComponent("huge.json")
        try Data(repeating: UInt8(ascii: " "), count: 2 << 20).write(to: huge)
        let tooLarge = try await curl(["--data-binary", "@\(huge.path)", "\(url)/chat/completions"])
        #expect(tooLarge.standardOutput.hasPrefix("HTTP/1.1 413") && tooLarge.standardOutput.contains("request_too_large"), "\(tooLarge.standardOutput.prefix(400))")

        // A queue of one: while a long generation runs (3,000 tokens: the random model has no
        // end-of-sequence token, and the context is 4,096), the next request is told when to
        // come back.
        let long = #"{"model": "base", "prompt": "The", "max_tokens": 3000, "temperature": 0, "stream": true}"#
        let first = Task.detached { try await ProcessRunner.run("/usr/bin/curl", ["-sS", "-N", "-d", long, "\(url)/completions"]) }
        try await Task.sleep(for: .milliseconds(300))
        var refusedBusy: ProcessOutput?
        for _ in 0..<200 where refusedBusy == nil {
            let next = try await curl(["-d", #"{"model": "base", "prompt": "A", "max_tokens": 1}"#, "\(url)/completions"])
            if next.standardOutput.hasPrefix("HTTP/1.1 429") { refusedBusy = next }
        }
        let busy = try #require(refusedBusy, "no request was refused while the queue was full")
        #expect(busy.standardOutput.lowercased().contains("retry-after: ") && busy.standardOutput.contains("rate_limit_exceeded"), "\(busy.standardOutput)")
        #expect(try await first.value.standardOutput.hasSuffix("data: [DONE]\n\n"))
        #expect(try await curl(["\(url)/models"]).standardOutput.hasPrefix("HTTP/1.1 200"), "the server runs on")

        server.signal(SIGTERM)
        #expect(try await server.waitForExit(timeout: .seconds(20)) == 0, "\(server.log)")
    }
}

/// The stop-sequence rules as a value.
@Suite("stop sequences")
struct StopSequenceTests {
    @Test("text is held back while it may start a stop string, cut before the first one, and half characters wait")
    func rules() {
        var stops = StopSequences(["END", "\n\n"])
        #expect(stops.next("Hello") == ("Hello", false))
        #expect(stops.next("Hello E") == (" ", false), "E may start END")
        #expect(stops.next("Hello EN") == ("", false))
        #expect(stops.next("Hello ENX") == ("ENX", false))
        #expect(stops.next("Hello ENX\u{FFFD}") == ("", false), "half a character waits")
        #expect(stops.next("Hello ENXé and END more") == ("é and ", true))
        var none = StopSequences([])
        #expect(none.next("abc") == ("abc", false))
        #expect(none.finish("abcd") == "d")
    }
}
