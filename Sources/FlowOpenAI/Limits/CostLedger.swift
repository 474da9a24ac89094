import FlowCore
import FlowObservability
import Foundation
import Metrics
import Synchronization

/// Dollars per million tokens of one model.
public struct ModelPrice: Codable, Sendable, Equatable {
    public var inputPerMillion: Double
    public var outputPerMillion: Double

    public init(inputPerMillion: Double, outputPerMillion: Double) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
    }


    public func cost(of usage: TokenUsage) -> Double {
        (Double(usage.promptTokens) * inputPerMillion + Double(usage.completionTokens) * outputPerMillion) / 1_000_000
    }

    /// List prices of common models in USD; replace or extend them with a price file
    /// (`FLOW_OPENAI_PRICES`) when they change or for other servers.
    public static let defaults: [String: ModelPrice] = [
        "gpt-4o-mini": .init(inputPerMillion: 0.15, outputPerMillion: 0.60),
        "gpt-4o": .init(inputPerMillion: 2.50, outputPerMillion: 10.00),
        "gpt-4.1": .init(inputPerMillion: 2.00, outputPerMillion: 8.00),
        "gpt-4.1-mini": .init(inputPerMillion: 0.40, outputPerMillion: 1.60),
        "gpt-4.1-nano": .init(inputPerMillion: 0.10, outputPerMillion: 0.40),
        "text-embedding-3-small": .init(inputPerMillion: 0.02, outputPerMillion: 0),
        "text-embedding-3-large": .init(inputPerMillion: 0.13, outputPerMillion: 0),
    ]
}

/// Tokens and dollars spent, per model, and the daily budget.
///
/// Today's spend is kept in a file so that a restarted worker still knows it; the budget
/// counts UTC days.
public final class CostLedger: Sendable {
    public struct Totals: Sendable, Equatable {
        public var requests = 0
        public var cachedRequests = 0
        public var promptTokens = 0
        public var completionTokens = 0
        public var costUSD = 0.0
    }

    private struct State {
        var totals: [String: Totals] = [:]
        var day: String
        var spentToday: Double
        /// Today's spend per model, since the worker started (the file keeps only the total).
        var spentTodayByModel: [String: Double] = [:]
    }

    private let prices: [String: ModelPrice]
    private let dailyBudgetUSD: Double?
    private let spendFile: URL?
    private let state: Mutex<State>
    private let instruments: Instruments

    /// What the ledger records into the process's metrics.
    private struct Instruments: Sendable {
        let requests: MetricFamily<Counter>
        let tokens: MetricFamily<Counter>
        let tokenUsage: MetricFamily<Recorder>
        let cost: MetricFamily<FloatingPointCounter>
        let spentToday: Gauge
        let modelSpentToday: MetricFamily<Gauge>

        init(_ metrics: FlowMetrics) {
            requests = metrics.counter(FlowMetricCatalogue.openAIRequests)
            tokens = metrics.counter(FlowMetricCatalogue.openAITokens)
            tokenUsage = metrics.recorder(FlowMetricCatalogue.tokenUsage)
            cost = metrics.floatingPointCounter(FlowMetricCatalogue.openAICost)
            spentToday = metrics.gauge(FlowMetricCatalogue.openAISpentToday)()
            modelSpentToday = metrics.gauge(FlowMetricCatalogue.openAIModelSpentToday)
        }
    }

    public init(prices: [String: ModelPrice], dailyBudgetUSD: Double?, spendFile: URL?, metrics: FlowMetrics = FlowMetrics()) {
        self.prices = prices
        self.dailyBudgetUSD = dailyBudgetUSD
        self.spendFile = spendFile
        instruments = Instruments(metrics)
        if let dailyBudgetUSD { metrics.gauge(FlowMetricCatalogue.openAIDailyBudget)().record(dailyBudgetUSD) }
        let today = Self.today()
        var spent = 0.0
        if let spendFile, let data = try? Data(contentsOf: spendFile),
           let stored = try? FlowJSON.decoder.decode([String: Double].self, from: data), let value = stored[today] {
            spent = value
        }
        state = Mutex(State(day: today, spentToday: spent))
        instruments.spentToday.record(spent)
    }

    private static func today(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: date)
    }

    /// The price of `model`, trying the name without a date suffix (`gpt-4o-2024-08-06`).
    public func price(of model: String) -> ModelPrice? {
        if let price = prices[model] { return price }
        let parts = model.split(separator: "-")
        for cut in stride(from: parts.count - 1, to: 0, by: -1) {
            if let price = prices[parts.prefix(cut).joined(separator: "-")] { return price }
        }
        return nil
    }

    /// Throws when today's budget is spent: another call would go over it.
    public func checkBudget() throws {
        guard let dailyBudgetUSD else { return }
        let spent = state.withLock { state in
            Self.rollOver(&state)
            return state.spentToday
        }
        guard spent >= dailyBudgetUSD else { return }
        throw OpenAIError.nonRetryable(
            .budgetExceeded,
            "today's OpenAI budget of $\(String(format: "%.2f", dailyBudgetUSD)) is spent ($\(String(format: "%.4f", spent))); calls resume at 00:00 UTC, or raise FLOW_OPENAI_DAILY_BUDGET_USD and replay the message"
        )
    }

    /// Records a call and returns its cost in dollars (0 for a cache hit, or a model
    /// without a known price).
    @discardableResult
    public func record(model: String, usage: TokenUsage, cached: Bool) -> Double {
        let cost = cached ? 0 : (price(of: model)?.cost(of: usage) ?? 0)
        let snapshot = state.withLock { state -> (day: String, spent: Double, modelSpent: Double) in
            Self.rollOver(&state)
            var entry = state.totals[model, default: Totals()]
            entry.requests += 1
            if cached { entry.cachedRequests += 1 } else {
                entry.promptTokens += usage.promptTokens
                entry.completionTokens += usage.completionTokens
                entry.costUSD += cost
            }
            state.totals[model] = entry
            state.spentToday += cost
            state.spentTodayByModel[model, default: 0] += cost
            return (state.day, state.spentToday, state.spentTodayByModel[model] ?? 0)
        }
        instruments.requests(model, cached ? "true" : "false").increment()
        if !cached {
            instruments.tokens(model, "input").increment(by: usage.promptTokens)
            instruments.tokens(model, "output").increment(by: usage.completionTokens)
            instruments.tokenUsage(model, "input").record(usage.promptTokens)
            instruments.tokenUsage(model, "output").record(usage.completionTokens)
            instruments.cost(model).increment(by: cost)
        }
        instruments.spentToday.record(snapshot.spent)
        instruments.modelSpentToday(model).record(snapshot.modelSpent)
        if cost > 0, let spendFile {
            try? FileManager.default.createDirectory(at: spendFile.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? FlowJSON.encode([snapshot.day: snapshot.spent]).write(to: spendFile, options: .atomic)
        }
        return cost
    }

    public func snapshot() -> [String: Totals] { state.withLock { $0.totals } }
    public var spent: Double { state.withLock { $0.spentToday } }

    /// Brings today's gauges up to date before a scrape: a new UTC day sets them to zero.
    public func refreshGauges() {
        let (spent, byModel, models) = state.withLock { state in
            Self.rollOver(&state)
            return (state.spentToday, state.spentTodayByModel, Array(state.totals.keys))
        }
        instruments.spentToday.record(spent)
        for model in models { instruments.modelSpentToday(model).record(byModel[model] ?? 0) }
    }

    private static func rollOver(_ state: inout State) {
        let today = today()
        if today != state.day {
            state.day = today
            state.spentToday = 0
            state.spentTodayByModel = [:]
        }
    }
}
