import FlowCore
import Foundation
import Testing

@Suite("Wire forms")
struct WireFormTests {
    /// What each type wrote before the shared convention, captured from that code: with
    /// snake-case keys from the strategy instead of hand-written `CodingKeys`, the text is
    /// the same byte for byte, so no client and no step's input digest sees a change.
    static let textBeforeTheConvention: [String: String] = [
        "ActivityReply": #"{"activity":"echo","attempt":2,"error":{"message":"bad field","retryable":false,"type":"InvalidInput"},"message_id":"m-1","output":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"progress":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"protocol":1,"status":"completed"}"#,
        "AnalyzeDocumentContent.Input": #"{"document_id":"d-1","max_part_characters":100,"model":"gpt-4o-mini","text":"t","use_cache":true}"#,
        "AnalyzeDocumentContent.Output": #"{"analysis":{"decisions":["d"],"open_questions":["q"],"risks":[{"description":"r","severity":"low"}],"summary":"s","themes":["t"]},"document_id":"d-1","model":"gpt-4o-mini","parts":1,"prompt_versions":["analyze_document@1"],"usage":{"cached_calls":1,"calls":3,"completion_tokens":2,"cost_usd":0.5,"prompt_tokens":1}}"#,
        "BlobReference": #"{"blob_id":"sha256:abc"}"#,
        "CatchballExchange.Input": #"{"context":"c","conversation":[{"content":"x","kind":"proposal"}],"model":"m","topic":"t","use_cache":true}"#,
        "CatchballExchange.Output": #"{"conversation":[{"content":"x","kind":"proposal"}],"feedback":"f","model":"m","prompt_versions":["v"],"proposal":"p","revised_proposal":"r","round":1,"usage":{"cached_calls":1,"calls":3,"completion_tokens":2,"cost_usd":0.5,"prompt_tokens":1}}"#,
        "CleanupStorage.Input": #"{"areas":["checkpoints"],"dry_run":true,"retention_days":1.5}"#,
        "CleanupStorage.Output": #"{"dry_run":true,"freed_bytes":3,"removed":[{"bytes":3,"path":"a/b"}]}"#,
        "CommandAnswer": #"{"accepted":true,"command":"flow.workflow.cancel","message":"cancelled","protocol":1}"#,
        "DelegateTraining.Input": #"{"base_model":"models/tiny","dataset":"sha256:abc","job_id":"job-1","lora":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"reply_to":"replies","training":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]}}"#,
        "DelegateTraining.Output": #"{"job_id":"job-1","message_id":"m-1","queue":"ml-queue"}"#,
        "EvaluateModel.Input": #"{"adapter_path":"adapters/job-1","base_model":"models/tiny","dataset":"sha256:abc","job_id":"job-1"}"#,
        "EvaluateModel.Output": #"{"base_eval_loss":2,"base_perplexity":7.5,"eval_loss":1.5,"job_id":"job-1","perplexity":4.5,"samples":3}"#,
        "GenerateText.Input": #"{"adapter_path":"adapters/job-1","base_model":"models/tiny","max_new_tokens":8,"messages":[{"content":"c","role":"user"}],"prompt":"p","seed":7,"temperature":0.5,"top_p":0.9}"#,
        "GenerateText.Output": #"{"finish_reason":"length","generated_tokens":2,"prompt_tokens":1,"text":"t","tokens_per_second":3.5}"#,
        "GetTrainingJob.Input": #"{"job_id":"job-1"}"#,
        "HealthCheck.Output": #"{"broker":"rabbit","data_folder":"/data","free_bytes":10,"problems":["p"],"queues":[{"consumers":2,"name":"default-queue","problem":"none","ready":1}],"status":"ok","worker_id":"w-1","writable":true}"#,
        "ListTrainingJobs.Input": #"{"limit":5,"state":"running"}"#,
        "ModelUsage": #"{"cached_calls":1,"calls":3,"completion_tokens":2,"cost_usd":0.5,"prompt_tokens":1}"#,
        "ParseDocument.Input": #"{"chunk_overlap":10,"chunk_size":100,"text":"t","text_blob_id":"sha256:abc"}"#,
        "ParseDocument.Output": #"{"characters":5,"chunk_count":1,"chunks":[{"characters":5,"index":0,"section":0,"start":0,"text":"hello"}],"section_count":1,"sections":[{"characters":5,"start":0,"title":"T"}]}"#,
        "ProcessDocumentUpload.Input": #"{"blob_id":"sha256:abc","document_id":"d-1","file_name":"a.txt","format":"text","path":"a.txt"}"#,
        "ProcessDocumentUpload.Output": #"{"characters":3,"document_id":"d-1","format":"text","lines":1,"metadata":{"pageCount":"1","page_count":"1"},"size_bytes":3,"source":"a.txt","text":"abc","text_blob_id":"sha256:abc","text_truncated":false,"words":1}"#,
        "ResearchAndSynthesize.Input": #"{"max_questions":2,"model":"m","sources":[{"text":"x","title":"s"}],"topic":"t","use_cache":false}"#,
        "ResearchAndSynthesize.Output": #"{"answers":[{"answer":"a","question":"q","sources":["s"]}],"gaps":["g"],"key_points":["k"],"model":"m","prompt_versions":["v"],"synthesis":"s","topic":"t","usage":{"cached_calls":1,"calls":3,"completion_tokens":2,"cost_usd":0.5,"prompt_tokens":1}}"#,
        "RetryPolicy.WireForm": #"{"backoff_coefficient":2,"initial_interval_ms":1000,"maximum_attempts":3,"maximum_interval_ms":100000,"non_retryable_error_types":["InvalidInput"]}"#,
        "StorageDelete.Output": #"{"blob_id":"sha256:abc","deleted":true}"#,
        "StorageGet.Output": #"{"base64":"dA==","blob_id":"sha256:abc","size":1,"text":"t"}"#,
        "StoragePut.Input": #"{"base64":"dA==","text":"t"}"#,
        "StoragePut.Output": #"{"blob_id":"sha256:abc","size":1}"#,
        "SynthesizeWisdom.Input": #"{"insights":[{"source":"s","text":"t"}],"max_principles":3,"model":"m","use_cache":true}"#,
        "SynthesizeWisdom.Output": #"{"model":"m","principles":[{"evidence":[{"observation":"o","source":"s"}],"principle":"p"}],"prompt_versions":["v"],"usage":{"cached_calls":1,"calls":3,"completion_tokens":2,"cost_usd":0.5,"prompt_tokens":1}}"#,
        "TrainOrganizationalModel.Input": #"{"base_model":"models/tiny","dataset":"sha256:abc","job_id":"job-1","lora":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"training":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]}}"#,
        "TrainOrganizationalModel.Output": #"{"adapter_path":"adapters/job-1","best_loss":1.25,"final_loss":1.5,"job_id":"job-1","steps":4,"tokens_per_second":100,"training_seconds":2}"#,
        "WorkflowCommand.AddSchedule": #"{"cron":"0 2 * * *","every_seconds":60,"input":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"name":"nightly","workflow":"echo_chain"}"#,
        "WorkflowCommand.Cancel": #"{"reason":"no longer needed","workflow_id":"w-1"}"#,
        "WorkflowCommand.RemoveSchedule": #"{"name":"nightly"}"#,
        "WorkflowCommand.Start": #"{"input":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"workflow":"echo_chain","workflow_id":"w-1"}"#,
        "WorkflowResult": #"{"error":{"message":"bad field","retryable":false,"type":"InvalidInput"},"output":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"protocol":1,"status":"failed","workflow":"echo_chain","workflow_id":"w-1"}"#,
    ]

    /// The same for the types holding dates, which were seconds since 2001 on the wire.
    static let datedTextBeforeTheConvention: [String: String] = [
        "ListTrainingJobs.Output": #"{"jobs":[{"best_loss":1.25,"cancel_requested":true,"checkpoints":["training/job-1/checkpoint-4"],"created_at":721692800.25,"deliveries":1,"error":{"message":"bad field","retryable":false,"type":"InvalidInput"},"job_id":"job-1","learning_rate":0.001,"loss":1.5,"max_steps":8,"message_id":"m-1","request":{"base_model":"models/tiny","dataset":"sha256:abc","job_id":"job-1","lora":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"training":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]}},"result":{"adapter_path":"adapters/job-1","best_loss":1.25,"final_loss":1.5,"job_id":"job-1","steps":4,"tokens_per_second":100,"training_seconds":2},"state":"completed","step":4,"tokens":400,"tokens_per_second":99.5,"training_seconds":3,"updated_at":721692800.25,"worker_id":"w-1"}]}"#,
        "StorageList.Output": #"{"blobs":[{"blob_id":"sha256:abc","created_at":721692800.5,"size":1}],"total_bytes":1}"#,
        "TrainingJob": #"{"best_loss":1.25,"cancel_requested":true,"checkpoints":["training/job-1/checkpoint-4"],"created_at":721692800.25,"deliveries":1,"error":{"message":"bad field","retryable":false,"type":"InvalidInput"},"job_id":"job-1","learning_rate":0.001,"loss":1.5,"max_steps":8,"message_id":"m-1","request":{"base_model":"models/tiny","dataset":"sha256:abc","job_id":"job-1","lora":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]},"training":{"camelKey":1,"snake_key":[true,null,2.5,"a/b"]}},"result":{"adapter_path":"adapters/job-1","best_loss":1.25,"final_loss":1.5,"job_id":"job-1","steps":4,"tokens_per_second":100,"training_seconds":2},"state":"completed","step":4,"tokens":400,"tokens_per_second":99.5,"training_seconds":3,"updated_at":721692800.25,"worker_id":"w-1"}"#,
    ]

    @Test("every type on the wire writes the text it wrote before the convention", arguments: WireFormSamples.all)
    func unchangedText(_ sample: WireFormSamples.Sample) throws {
        let expected = try #require(Self.textBeforeTheConvention[sample.name], "no captured text for \(sample.name)")
        #expect(try sample.encode() == expected)
    }

    @Test("every type on the wire reads back what it writes", arguments: WireFormSamples.all + WireFormSamples.dated)
    func roundTrip(_ sample: WireFormSamples.Sample) throws {
        let text = try sample.encode()
        #expect(try sample.roundTrip(text) == text)
    }

    @Test("dates are written in ISO 8601 with milliseconds, and the seconds since 2001 written before still read", arguments: WireFormSamples.dated)
    func dates(_ sample: WireFormSamples.Sample) throws {
        let text = try sample.encode()
        #expect(text.contains("\"created_at\":\"2023-11-14T22:13:2"))
        let legacy = try #require(Self.datedTextBeforeTheConvention[sample.name])
        #expect(try sample.roundTrip(legacy) == text)
    }

    @Test("the key conversion treats acronyms as one word, both ways", arguments: [
        ("messageID", "message_id"), ("blobIDs", "blob_ids"), ("costUSD", "cost_usd"), ("baseURL", "base_url"),
        ("retryAfterMs", "retry_after_ms"), ("tokensPerSecond", "tokens_per_second"), ("id", "id"), ("protocol", "protocol"),
        ("messageIDString", "message_id_string"), ("textUTF8", "text_utf8"),
    ])
    func keys(_ name: String, _ key: String) {
        #expect(JSONKeys.snakeCase(name) == key)
        #expect(JSONKeys.swiftName(fromSnakeCase: key) == name)
    }

    @Test("keys written in camel case before the convention still read")
    func camelCaseStillReads() throws {
        let reply = try FlowJSON.decode(ActivityReply.self, from: #"{"protocol":1,"status":"completed","activity":"echo","messageID":"m-1","attempt":1}"#)
        #expect(reply.messageID == "m-1")
    }

    @Test("dictionary keys and the keys inside carried JSON are data, and are never converted")
    func dataKeysStay() throws {
        let text = try FlowJSON.encodeText(["camelKey": ["snake_key": 1]])
        #expect(text == #"{"camelKey":{"snake_key":1}}"#)
        #expect(try FlowJSON.decode([String: [String: Int]].self, from: text) == ["camelKey": ["snake_key": 1]])
    }

    @Test("a date written and read back writes the same text, to the millisecond")
    func dateRoundTrip() throws {
        for seconds in [0, 1_700_000_000.2505, 1_700_000_000.9996, -86_400.25, 4_102_444_800.001] {
            let text = JSONDates.text(Date(timeIntervalSince1970: seconds))
            let read = try #require(JSONDates.date(text), "\(text) does not read")
            #expect(JSONDates.text(read) == text)
            #expect(abs(read.timeIntervalSince1970 - seconds) <= 0.0005 + seconds.ulp * 4)
        }
        #expect(JSONDates.text(Date(timeIntervalSince1970: 1_700_000_000.25)) == "2023-11-14T22:13:20.250Z")
        #expect(JSONDates.date("2023-11-14T22:13:20Z")?.timeIntervalSince1970 == 1_700_000_000)
        #expect(JSONDates.date("2023-11-14T23:13:20.5+01:00")?.timeIntervalSince1970 == 1_700_000_000.5)
        #expect(JSONDates.date("yesterday") == nil)
    }

    @Test("a date that is not ISO 8601 is refused with the form it should have")
    func badDate() throws {
        let error = #expect(throws: DecodingError.self) { try FlowJSON.decode([Date].self, from: #"["yesterday"]"#) }
        #expect(error.map(FlowJSON.describe)?.contains("2026-12-02T10:00:00.250Z") == true)
    }

    @Test("a decoding error names the field as the wire spells it")
    func errorNamesTheWireKey() throws {
        let error = #expect(throws: DecodingError.self) { try FlowJSON.decode(ActivityReply.self, from: #"{"protocol":1,"status":"completed","activity":"echo","attempt":1}"#) }
        #expect(error.map(FlowJSON.describe) == "field 'message_id' is missing")
    }
}
