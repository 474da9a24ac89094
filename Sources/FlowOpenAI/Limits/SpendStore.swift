/// Where a deployment's OpenAI spend is booked: one row per call, shared by every copy of
/// the actor that opens the same store.
///
/// Two implementations: ``SpendBook``, a SQLite file on the volume copies on one host
/// share (the default), and `PostgresSpendBook` (FlowPostgres) for copies on several
/// hosts. Each must book a call and check the budget as one step that two copies cannot
/// both pass for the last dollar; `SpendStoreConformance` holds both to it.
public protocol SpendStore: Sendable {
    /// Where the book is, for messages: a path, or a URL without its password.
    var location: String { get }

    /// Books a call at `estimateUSD` on `day` unless the day's spend (settled calls at
    /// their cost, open ones at their estimate) has reached `budgetUSD`; returns the day's
    /// spend with the booking. Throws ``SpendRefusal`` when the budget is reached.
    func book(id: String, day: String, model: String, estimateUSD: Double, budgetUSD: Double?) async throws -> Double

    /// Sets a booked call's real cost.
    func settle(id: String, costUSD: Double) async throws

    /// The day's spend: settled calls at their cost, open ones at their estimate.
    func spent(day: String) async throws -> Double

    func spentByModel(day: String) async throws -> [String: Double]

    /// Calls booked on `day` and not settled: in flight, or lost with a copy that died.
    func openBookings(day: String) async throws -> Int
}

/// The budget would be passed: nothing was booked.
public struct SpendRefusal: Error, Sendable {
    public var spentUSD: Double

    public init(spentUSD: Double) {
        self.spentUSD = spentUSD
    }
}
