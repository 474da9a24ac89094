/// One model's sliding window of calls, as a value: whether a call may start at an
/// instant, or when to look again. ``RateLimiter`` drives it with the real clock; tests
/// drive it with instants of their own, without waiting.
struct RateWindow: Sendable {
    enum Admission: Equatable {
        case admitted(id: UInt64)
        /// The call does not fit before this instant (the oldest call leaves the window),
        /// unless a correction makes room sooner.
        case wait(until: ContinuousClock.Instant)
    }

    private struct Entry {
        var id: UInt64
        var start: ContinuousClock.Instant
        var tokens: Int
    }

    let limits: RateLimiter.Limits
    /// The limits in force: the configured ones, or what ``AdaptiveLimit`` learned.
    var requestLimit: Int?
    var tokenLimit: Int?
    private var entries: [Entry] = []
    private var nextID: UInt64 = 0

    init(limits: RateLimiter.Limits) {
        self.limits = limits
        requestLimit = limits.requests
        tokenLimit = limits.tokens
    }

    /// Admits a call estimated at `estimatedTokens` at `now` when it fits the limits.
    mutating func admit(estimatedTokens: Int, at now: ContinuousClock.Instant) -> Admission {
        entries.removeAll { now - $0.start >= limits.window }
        let tokensInWindow = entries.reduce(0) { $0 + $1.tokens }
        let requestsFit = requestLimit.map { entries.count < $0 } ?? true
        // A call larger than the whole token limit still goes alone, or it never would.
        let tokensFit = tokenLimit.map { tokensInWindow + estimatedTokens <= $0 || entries.isEmpty } ?? true
        guard requestsFit && tokensFit else {
            return .wait(until: (entries.map(\.start).min() ?? now) + limits.window)
        }
        nextID += 1
        entries.append(Entry(id: nextID, start: now, tokens: estimatedTokens))
        return .admitted(id: nextID)
    }

    /// Replaces a call's estimate with the tokens it really used.
    mutating func correct(id: UInt64, actualTokens: Int) {
        guard let index = entries.firstIndex(where: { $0.id == id }) else { return }
        entries[index].tokens = actualTokens
    }
}
