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
/// Today's spend is one figure for the whole deployment: every copy of the OpenAI actor
/// records its calls in the same ``SpendStore``: a SQLite file on the data volume they
/// share (``SpendBook``), or a PostgreSQL database for copies on several hosts. A call is booked at its most possible cost before it is sent, in the
/// same transaction that checks the budget, and settled to its real cost once its answer
/// is read and before the answer is used. So copies cannot together pass the budget by
/// more than the calls in flight at its edge, and a copy that dies mid-call leaves its
/// booking at the estimate: spend can be over-counted, never under-counted. The budget
/// counts UTC days.
public final class CostLedger: Sendable {
    public struct Totals: Sendable, Equatable {
        public var requests = 0
        public var cachedRequests = 0
        public var promptTokens = 0
        public var completionTokens = 0
        public var costUSD = 0.0
    }

    /// A call booked in the spend book before it is sent.
    public struct Booking: Sendable {
        let id: String
        let model: String
    }

    private struct State {
        /// This process's calls, per model, since it started.
        var totals: [String: Totals] = [:]
    }

    private let prices: [String: ModelPrice]
    private let dailyBudgetUSD: Double?
    private let book: (any SpendStore)?
    private let state = Mutex(State())
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

    /// A ledger whose spend is kept in the SQLite file `spendFile` (shared by every copy
    /// that names the same file), or in memory only when it is nil.
    public convenience init(prices: [String: ModelPrice], dailyBudgetUSD: Double?, spendFile: URL?, metrics: FlowMetrics = FlowMetrics()) throws {
        self.init(prices: prices, dailyBudgetUSD: dailyBudgetUSD, store: try spendFile.map { try SpendBook(path: $0.path) } ?? SpendBook.inMemory(), metrics: metrics)
    }

    /// A ledger whose spend is kept in `store`, shared by every copy that opens it.
    public init(prices: [String: ModelPrice], dailyBudgetUSD: Double?, store: any SpendStore, metrics: FlowMetrics = FlowMetrics()) {
        self.prices = prices
        self.dailyBudgetUSD = dailyBudgetUSD
        book = store
        instruments = Instruments(metrics)
        if let dailyBudgetUSD { metrics.gauge(FlowMetricCatalogue.openAIDailyBudget)().record(dailyBudgetUSD) }
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

    /// Books a call to `model` of at most `promptTokens` and `completionTokens` before it is
    /// sent; throws `BudgetExceeded` when today's spend, every copy's bookings included, has
    /// reached the budget.
    public func book(model: String, promptTokens: Int, completionTokens: Int) async throws -> Booking {
        let estimate = price(of: model)?.cost(of: TokenUsage(promptTokens: promptTokens, completionTokens: completionTokens)) ?? 0
        let booking = Booking(id: UUID().uuidString, model: model)
        guard let book else { return booking }
        let spent: Double
        do {
            spent = try await book.book(id: booking.id, day: Self.today(), model: model, estimateUSD: estimate, budgetUSD: dailyBudgetUSD)
        } catch let error as SpendRefusal {
            throw budgetExceeded(spent: error.spentUSD)
        } catch {
            throw OpenAIError.retryable(.spendBookUnavailable, "the spend book (\(book.location)) could not book the call, so it was not sent: \(error)")
        }
        instruments.spentToday.record(spent)
        return booking
    }

    /// Throws `BudgetExceeded` when today's spend has reached the budget already: a call
    /// need not wait for the rate limiter to be refused.
    public func checkBudget() async throws {
        guard let dailyBudgetUSD, let book else { return }
        let spent = (try? await book.spent(day: Self.today())) ?? 0
        if spent >= dailyBudgetUSD { throw budgetExceeded(spent: spent) }
    }

    private func budgetExceeded(spent: Double) -> OpenAIError {
        .nonRetryable(
            .budgetExceeded,
            "today's OpenAI budget of $\(String(format: "%.2f", dailyBudgetUSD ?? 0)) is spent ($\(String(format: "%.4f", spent)) by every copy of the actor); calls resume at 00:00 UTC, or raise FLOW_OPENAI_DAILY_BUDGET_USD and replay the message"
        )
    }

    /// Settles a call that got no billable answer (an error status): it cost nothing.
    public func cancel(_ booking: Booking) async {
        try? await book?.settle(id: booking.id, costUSD: 0)
    }

    /// Records a call and returns its cost in dollars (0 for a cache hit, or a model
    /// without a known price). A booked call's booking is settled to the real cost.
    @discardableResult
    public func record(model: String, usage: TokenUsage, cached: Bool, booking: Booking? = nil) async -> Double {
        let cost = cached ? 0 : (price(of: model)?.cost(of: usage) ?? 0)
        if let booking { try? await book?.settle(id: booking.id, costUSD: cost) }
        state.withLock { state in
            var entry = state.totals[model, default: Totals()]
            entry.requests += 1
            if cached { entry.cachedRequests += 1 } else {
                entry.promptTokens += usage.promptTokens
                entry.completionTokens += usage.completionTokens
                entry.costUSD += cost
            }
            state.totals[model] = entry
        }
        instruments.requests(model, cached ? "true" : "false").increment()
        if !cached {
            instruments.tokens(model, "input").increment(by: usage.promptTokens)
            instruments.tokens(model, "output").increment(by: usage.completionTokens)
            instruments.tokenUsage(model, "input").record(usage.promptTokens)
            instruments.tokenUsage(model, "output").record(usage.completionTokens)
            instruments.cost(model).increment(by: cost)
        }
        if !cached { await refreshGauges() }
        return cost
    }

    public func snapshot() -> [String: Totals] { state.withLock { $0.totals } }

    /// Today's spend by every copy that shares the spend book.
    public var spent: Double {
        get async { (try? await book?.spent(day: Self.today())) ?? 0 }
    }

    /// Brings today's gauges up to date from the spend book before a scrape: they show the
    /// whole deployment's spend, and a new UTC day sets them to zero.
    public func refreshGauges() async {
        guard let book, let byModel = try? await book.spentByModel(day: Self.today()) else { return }
        instruments.spentToday.record(byModel.values.reduce(0, +))
        for (model, spent) in byModel { instruments.modelSpentToday(model).record(spent) }
    }

    static func today(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: date)
    }
}
