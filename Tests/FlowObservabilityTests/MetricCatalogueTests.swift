import FlowCore
@testable import FlowObservability
import FlowTesting
import Foundation
import Metrics
import Testing
import Yams

@Suite("the metric catalogue, the docs, the dashboard and the alert rules")
struct MetricCatalogueTests {
    @Test("each metric's Prometheus name follows OpenTelemetry's rules, once")
    func names() {
        let names = FlowMetricCatalogue.all.map(\.prometheusName)
        #expect(Set(names).count == names.count, "a name is used twice")
        #expect(FlowMetricCatalogue.processDuration.prometheusName == "messaging_process_duration_seconds")
        #expect(FlowMetricCatalogue.processDuration.prometheusLabels.first == "messaging_destination_name")
        #expect(FlowMetricCatalogue.openAICost.prometheusName == "flow_openai_cost_usd_total")
        for definition in FlowMetricCatalogue.all {
            #expect(["flow_", "messaging_", "gen_ai_"].contains { definition.prometheusName.hasPrefix($0) })
            #expect((definition.kind == .counter) == definition.prometheusName.hasSuffix("_total"), "\(definition.name)")
            #expect((definition.kind == .histogram) == (definition.buckets != nil), "\(definition.name): a histogram has buckets, nothing else does")
            if case .durations(let bounds) = definition.buckets {
                #expect(definition.unit == .seconds)
                #expect(bounds == bounds.sorted() && Set(bounds).count == bounds.count)
            }
        }
    }

    @Test("what each definition records is exposed under its name, with its type, its labels, and label values escaped")
    func exposition() {
        let metrics = FlowMetrics()
        for definition in FlowMetricCatalogue.all {
            let values = definition.attributes.map { _ in #"a "quoted" \ value"# + "\nwith a line break" }
            switch (definition.kind, definition.unit) {
            case (.counter, .usd): metrics.floatingPointCounter(definition).instrument(values).increment(by: 0.25)
            case (.counter, _): metrics.counter(definition).instrument(values).increment(by: 2)
            case (.gauge, _): metrics.gauge(definition).instrument(values).record(3)
            case (.histogram, .seconds): metrics.timer(definition).instrument(values).record(Duration.milliseconds(1500))
            case (.histogram, _): metrics.recorder(definition).instrument(values).record(7)
            }
        }
        let scraped = PrometheusText(metrics.exposition())
        for definition in FlowMetricCatalogue.all {
            #expect(scraped.types[definition.prometheusName] == definition.kind.rawValue, "\(definition.prometheusName)")
            let series = definition.kind == .histogram ? definition.prometheusName + "_count" : definition.prometheusName
            let samples = scraped.samples(series)
            #expect(samples.count == 1, "\(series)")
            let expected = Set(definition.prometheusLabels)
            #expect(Set(samples.first.map { Array($0.labels.keys) } ?? []) == expected, "\(series): \(samples)")
            for value in samples.first.map({ Array($0.labels.values) }) ?? [] {
                #expect(value == #"a "quoted" \ value"# + "\nwith a line break")
            }
        }
        #expect(scraped.sum("messaging_process_duration_seconds_sum") == 1.5)
        #expect(scraped.sum("flow_openai_cost_usd_total") == 0.25)
    }

    @Test("docs/observability.md lists every metric, and what each replaced")
    func documented() throws {
        let docs = try String(contentsOf: Repository.file("docs/observability.md"), encoding: .utf8)
        for definition in FlowMetricCatalogue.all {
            #expect(docs.contains("`\(definition.prometheusName)`"), "\(definition.prometheusName) is not in docs/observability.md")
            if let old = definition.replaces?.split(separator: " ").first {
                #expect(docs.contains("| `\(old)"), "the old name \(old) is not in the mapping table")
            }
        }
    }

    @Test("the Grafana dashboard and the alert rules name only metrics the code exports, with their labels")
    func dashboardsAndAlerts() throws {
        let dashboard = try FlowJSON.decoder.decode(JSONValue.self, from: Data(contentsOf: Repository.file("docs/observability/grafana-dashboard.json")))
        var expressions: [String] = []
        func collect(_ value: JSONValue) {
            switch value {
            case .object(let object):
                if let expr = object["expr"]?.stringValue { expressions.append(expr) }
                object.values.forEach(collect)
            case .array(let array): array.forEach(collect)
            default: break
            }
        }
        collect(dashboard)
        let panelTitles = (dashboard["panels"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue == "row" ? $0["title"]?.stringValue : nil }
        #expect(panelTitles == ["Queues and workers", "Workflows", "Dead letters", "Training", "OpenAI costs"])
        #expect(expressions.count >= 25)

        let alerts = try Yams.load(yaml: String(contentsOf: Repository.file("docs/observability/alerts.yaml"), encoding: .utf8)) as? [String: Any]
        let rules = ((alerts?["groups"] as? [[String: Any]])?.first?["rules"] as? [[String: Any]]) ?? []
        #expect(Set(rules.compactMap { $0["alert"] as? String }) == [
            "FlowDeadLetterQueueGrowing", "FlowWorkflowParkedTooLong", "FlowWorkerDown", "FlowOpenAIBudgetOver80Percent", "FlowTrainingStalled",
        ])
        for rule in rules {
            #expect(rule["expr"] is String && (rule["annotations"] as? [String: Any])?["description"] is String, "\(rule)")
        }
        expressions += rules.compactMap { $0["expr"] as? String }

        let series = Dictionary(
            FlowMetricCatalogue.all.flatMap { definition in definition.prometheusSeriesNames.map { ($0, definition) } }, uniquingKeysWith: { first, _ in first }
        )
        var named = Set<String>()
        for expression in expressions {
            for use in PromQLUses(expression).uses {
                // Prometheus' own per-target series.
                if use.metric == "up" { continue }
                guard let definition = series[use.metric] else {
                    Issue.record("\(use.metric) in `\(expression)` is not a metric the code exports")
                    continue
                }
                named.insert(definition.name)
                let allowed = Set(definition.prometheusLabels + ["instance", "job"] + (use.metric.hasSuffix("_bucket") ? ["le"] : []))
                #expect(use.labels.isSubset(of: allowed), "`\(expression)` filters \(definition.prometheusName) on \(use.labels.subtracting(allowed))")
            }
        }
        // Every metric the code exports is on the dashboard or in a rule.
        #expect(Set(FlowMetricCatalogue.all.map(\.name)).subtracting(named).isEmpty, "on no panel: \(Set(FlowMetricCatalogue.all.map(\.name)).subtracting(named).sorted())")
    }
}

/// The metric names a PromQL expression reads, with the labels it matches each on: enough
/// of the grammar to check names (label matchers in braces, `by`/`on` lists, functions).
struct PromQLUses {
    struct Use {
        var metric: String
        var labels: Set<String>
    }

    var uses: [Use] = []

    init(_ expression: String) {
        let keywords: Set<String> = [
            "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "rate", "increase", "irate", "histogram_quantile", "time", "abs", "clamp_min", "topk", "bool", "offset",
        ]
        let characters = Array(expression)
        var index = 0
        var afterGrouping = false
        while index < characters.count {
            let character = characters[index]
            if character.isLetter || character == "_" {
                var end = index
                while end < characters.count, characters[end].isLetter || characters[end].isNumber || characters[end] == "_" || characters[end] == ":" { end += 1 }
                let word = String(characters[index..<end])
                index = end
                if ["by", "without", "on", "ignoring"].contains(word) {
                    afterGrouping = true
                    continue
                }
                // A `by (...)` list names labels, not metrics; `$__rate_interval` is Grafana's.
                if keywords.contains(word) || (index < characters.count && characters[index] == "(") { continue }
                var labels = Set<String>()
                if index < characters.count, characters[index] == "{" {
                    var close = index
                    while close < characters.count, characters[close] != "}" { close += 1 }
                    let inside = String(characters[(index + 1)..<close])
                    labels = Set(inside.split(separator: ",").compactMap { matcher in
                        matcher.split(whereSeparator: { "=!~".contains($0) }).first.map { $0.trimmingCharacters(in: .whitespaces) }
                    })
                    index = close + 1
                }
                uses.append(Use(metric: word, labels: labels))
            } else if character == "(" && afterGrouping {
                // Skip the label list of `by (...)`, `on (...)`.
                while index < characters.count, characters[index] != ")" { index += 1 }
                afterGrouping = false
                index += 1
            } else if character == "\"" {
                index += 1
                while index < characters.count, characters[index] != "\"" { index += 1 }
                index += 1
            } else if character == "[" {
                while index < characters.count, characters[index] != "]" { index += 1 }
                index += 1
            } else {
                index += 1
            }
        }
    }
}
