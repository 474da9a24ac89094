import FlowAMQP
import FlowCore
import FlowHTTP
@testable import FlowObservability
import FlowTesting
import Foundation
import Testing

/// What a real worker process's `/metrics` shows after a known run, read with the
/// exposition parser (types, labels, values), never by matching text.
@Suite("a worker's /metrics after a known run")
struct MetricsScrapeTests {
    @Test("five activities, one retry and one dead letter show as such, with their types and labels; the retry joins its first attempt's trace")
    func knownRun() async throws {
        let receiver = try await OTLPReceiver()
        let openAI = try await FakeOpenAIServer()
        // The first call fails with a 500; with no client retries the attempt fails and the
        // worker retries it through a delay tier.
        openAI.script(.serverError)
        let setup = try await WorkerProcessSetup.make(queue: .openai)
        let arguments = setup.workerArguments(extra: []).map { $0 == "off" ? "0" : $0 }
        let worker = try FlowProcess(arguments, environment: receiver.exporterEnvironment.merging([
            "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openAI.baseURL, "FLOW_OPENAI_MAX_RETRIES": "0", "FLOW_OPENAI_DAILY_BUDGET_USD": "5",
        ]) { $1 })
        let port = try #require(try await worker.servingPort(), "\(worker.log)")

        for index in 0..<4 {
            try await setup.send("analyze_document_content", input: #"{"document_id": "doc-\#(index)", "text": "Quarterly report number \#(index): revenue grew."}"#, messageID: "analysis-\(index)")
        }
        try await setup.send("analyze_document_content", input: #"{"document_id": 5}"#, messageID: "analysis-malformed")
        try await setup.replies.wait(timeout: .seconds(60)) { box in box.completedIDs.count == 4 && box.failedCount == 1 }

        let http = try await CurlHTTPClient(maximumIdleHandles: 1).send(HTTPRequest(url: "http://127.0.0.1:\(port)/metrics"))
        #expect(http.status == 200)
        #expect(http.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let scraped = PrometheusText(String(decoding: http.body, as: UTF8.self))
        let queue = setup.names.queue(.openai)
        func outcome(_ name: String) -> Double {
            scraped.sum("flow_activity_outcomes_total", matching: ["messaging_destination_name": queue, "flow_activity_name": "analyze_document_content", "flow_outcome": name])
        }

        for (name, type) in [
            ("flow_activity_outcomes_total", "counter"), ("messaging_process_duration_seconds", "histogram"), ("flow_activity_retries_total", "counter"),
            ("flow_dead_letters_total", "counter"), ("flow_activities_in_flight", "gauge"), ("flow_worker_consuming", "gauge"),
            ("flow_amqp_recoveries_total", "counter"), ("flow_openai_requests_total", "counter"), ("flow_openai_tokens_total", "counter"),
            ("gen_ai_client_token_usage", "histogram"), ("gen_ai_client_operation_duration_seconds", "histogram"), ("flow_openai_cost_usd_total", "counter"),
            ("flow_openai_spent_today_usd", "gauge"), ("flow_openai_daily_budget_usd", "gauge"), ("flow_openai_rate_limit_wait_seconds", "histogram"),
        ] {
            #expect(scraped.types[name] == type, "\(name) is \(scraped.types[name] ?? "missing"), not \(type)")
        }
        // Every attempt started: the four, the retry of the one that met the 500, and the
        // malformed one, which fails in its input's decoding.
        #expect(outcome("started") == 6)
        #expect(outcome("completed") == 4)
        #expect(outcome("retried") == 1)
        #expect(outcome("failed") == 1)
        #expect(outcome("dead_lettered") == 1)
        let retries = scraped.samples("flow_activity_retries_total", matching: ["flow_activity_name": "analyze_document_content"]).filter { $0.value > 0 }
        #expect(retries.count == 1 && retries.first?.value == 1 && retries.first?.labels["error_type"]?.isEmpty == false, "\(retries)")
        #expect(scraped.sum("flow_dead_letters_total", matching: ["flow_activity_name": "analyze_document_content", "error_type": "InvalidInput"]) == 1)

        // The histogram: a count per outcome, buckets that only grow, +Inf equal to the count.
        let completed = ["messaging_destination_name": queue, "flow_activity_name": "analyze_document_content", "flow_outcome": "completed"]
        #expect(scraped.sum("messaging_process_duration_seconds_count", matching: completed) == 4)
        let buckets = scraped.samples("messaging_process_duration_seconds_bucket", matching: completed)
            .map { (bound: Double($0.labels["le"]!.replacingOccurrences(of: "+Inf", with: "inf"))!, count: $0.value) }.sorted { $0.bound < $1.bound }
        #expect(buckets.count == FlowMetricCatalogue.Buckets.activity.count + 1)
        #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0.count <= $1.count })
        #expect(buckets.last?.bound == .infinity && buckets.last?.count == 4)
        #expect(scraped.sum("messaging_process_duration_seconds_sum", matching: completed) > 0)

        // The OpenAI side: four answered calls, one failed call, tokens and dollars that agree.
        let model = ["gen_ai_request_model": "gpt-4o-mini"]
        #expect(scraped.sum("flow_openai_requests_total", matching: model.merging(["flow_cached": "false"]) { $1 }) == 4)
        #expect(scraped.sum("gen_ai_client_operation_duration_seconds_count", matching: model.merging(["gen_ai_operation_name": "chat"]) { $1 }) == 5)
        let inputTokens = scraped.sum("flow_openai_tokens_total", matching: model.merging(["gen_ai_token_type": "input"]) { $1 })
        #expect(inputTokens > 0)
        #expect(scraped.sum("gen_ai_client_token_usage_sum", matching: model.merging(["gen_ai_token_type": "input"]) { $1 }) == inputTokens)
        #expect(scraped.sum("gen_ai_client_token_usage_count", matching: model.merging(["gen_ai_token_type": "input"]) { $1 }) == 4)
        let cost = scraped.sum("flow_openai_cost_usd_total", matching: model)
        let spent = scraped.sum("flow_openai_spent_today_usd")
        #expect(cost > 0)
        // The same four costs summed by the ledger and by the counter, perhaps in another
        // order: apart by at most one rounding per addition.
        #expect(abs(cost - spent) <= 4 * cost.ulp, "cost \(cost), spent today \(spent)")
        #expect(scraped.sum("flow_openai_daily_budget_usd") == 5)
        #expect(scraped.sum("flow_openai_rate_limit_wait_seconds_count", matching: model) == 5)

        #expect(scraped.sum("flow_worker_consuming", matching: ["messaging_destination_name": queue]) == 1)
        #expect(scraped.sum("flow_activities_in_flight", matching: ["messaging_destination_name": queue]) == 0)
        #expect(scraped.sum("flow_amqp_recoveries_total") == 0)
        // Only catalogued metrics, apart from what the libraries add under their own names.
        let catalogued = Set(FlowMetricCatalogue.all.flatMap(\.prometheusSeriesNames))
        let ours = Set(scraped.samples.map(\.name)).filter { $0.hasPrefix("flow_") || $0.hasPrefix("messaging_") || $0.hasPrefix("gen_ai_") }
        #expect(ours.isSubset(of: catalogued), "not in the catalogue: \(ours.subtracting(catalogued).sorted())")

        worker.signal(SIGTERM)
        #expect(try await worker.waitForExit(timeout: .seconds(30)) == 0)

        // The requests came without a trace: each first attempt begins one, and the retry,
        // published by the worker, continues it under the attempt that failed.
        let attempts = Dictionary(grouping: receiver.spans.filter { $0.name == "process analyze_document_content" }) { $0.attributes["messaging.message.id"] ?? "" }
        #expect(attempts.count == 5, "\(receiver.spans)")
        let retried = try #require(attempts.values.first { $0.count == 2 }, "\(attempts)")
        let first = try #require(retried.first { $0.attributes["flow.activity.attempt"] == "1" })
        let second = try #require(retried.first { $0.attributes["flow.activity.attempt"] == "2" })
        #expect(first.parentSpanID == nil && first.events.contains("retry scheduled") && first.attributes["flow.outcome"] == "retried")
        #expect(second.traceID == first.traceID && second.parentSpanID == first.spanID && second.attributes["flow.outcome"] == "completed")
        #expect(attempts["analysis-malformed"]?.first?.attributes["flow.outcome"] == "dead_lettered")
        await receiver.stop()
        await setup.tearDown()
        await openAI.stop()
    }
}
