import FlowCore
import Foundation
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

    public init(prices: [String: ModelPrice], dailyBudgetUSD: Double?, spendFile: URL?) {
        self.prices = prices
        self.dailyBudgetUSD = dailyBudgetUSD
        self.spendFile = spendFile
        let today = Self.today()
        var spent = 0.0
        if let spendFile, let data = try? Data(contentsOf: spendFile),
           let stored = try? FlowJSON.decoder.decode([String: Double].self, from: data), let value = stored[today] {
            spent = value
        }
        state = Mutex(State(day: today, spentToday: spent))
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
        let snapshot = state.withLock { state -> (String, Double) in
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
            return (state.day, state.spentToday)
        }
        if cost > 0, let spendFile {
            try? FileManager.default.createDirectory(at: spendFile.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? FlowJSON.encode([snapshot.0: snapshot.1]).write(to: spendFile, options: .atomic)
        }
        return cost
    }

    public func snapshot() -> [String: Totals] { state.withLock { $0.totals } }
    public var spent: Double { state.withLock { $0.spentToday } }

    private static func rollOver(_ state: inout State) {
        let today = today()
        if today != state.day {
            state.day = today
            state.spentToday = 0
            state.spentTodayByModel = [:]
        }
    }

    /// The counters in Prometheus' text format.
    public func prometheusText() -> String {
        let (totals, spentToday) = state.withLock { ($0.totals, $0.spentToday) }
        var lines = [
            "# HELP flow_openai_requests_total Chat and embedding calls by model, cache hits included.",
            "# TYPE flow_openai_requests_total counter",
        ]
        for (model, entry) in totals.sorted(by: { $0.key < $1.key }) {
            lines.append(#"flow_openai_requests_total{model="\#(model)",cached="false"} \#(entry.requests - entry.cachedRequests)"#)
            lines.append(#"flow_openai_requests_total{model="\#(model)",cached="true"} \#(entry.cachedRequests)"#)
        }
        lines += ["# HELP flow_openai_tokens_total Tokens used by model and kind.", "# TYPE flow_openai_tokens_total counter"]
        for (model, entry) in totals.sorted(by: { $0.key < $1.key }) {
            lines.append(#"flow_openai_tokens_total{model="\#(model)",kind="prompt"} \#(entry.promptTokens)"#)
            lines.append(#"flow_openai_tokens_total{model="\#(model)",kind="completion"} \#(entry.completionTokens)"#)
        }
        lines += ["# HELP flow_openai_cost_usd_total Dollars spent by model, from reported usage and the price table.", "# TYPE flow_openai_cost_usd_total counter"]
        for (model, entry) in totals.sorted(by: { $0.key < $1.key }) {
            lines.append(#"flow_openai_cost_usd_total{model="\#(model)"} \#(entry.costUSD)"#)
        }
        lines += ["# HELP flow_openai_spent_today_usd Dollars spent today (UTC).", "# TYPE flow_openai_spent_today_usd gauge", "flow_openai_spent_today_usd \(spentToday)"]
        let byModel = state.withLock { $0.spentTodayByModel }
        lines += ["# HELP flow_openai_model_spent_today_usd Dollars spent today (UTC) by model, since the worker started.", "# TYPE flow_openai_model_spent_today_usd gauge"]
        for (model, spent) in byModel.sorted(by: { $0.key < $1.key }) {
            lines.append(#"flow_openai_model_spent_today_usd{model="\#(model)"} \#(spent)"#)
        }
        if let dailyBudgetUSD {
            lines += ["# HELP flow_openai_daily_budget_usd The daily budget (FLOW_OPENAI_DAILY_BUDGET_USD).", "# TYPE flow_openai_daily_budget_usd gauge", "flow_openai_daily_budget_usd \(dailyBudgetUSD)"]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
