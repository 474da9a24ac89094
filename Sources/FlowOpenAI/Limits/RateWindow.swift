/// One model's (or one rate key's) sliding window of calls, as a value: whether a call may
/// start at an instant, or when to look again. ``RateLimiter`` drives it with the real
/// clock; tests drive it with instants of their own, without waiting.
///
/// Two rules, both in force:
/// - in any window at most `requestLimit` calls start and at most `tokenLimit` tokens are
///   spent;
/// - starts are spaced `window / requestLimit` apart, with a burst of one second's worth of
///   the limit allowed (a generic cell-rate rule). Servers enforce a per-minute limit over
///   shorter periods too (OpenAI says so of its own), so a full minute's calls in its first
///   second would be refused even though the minute allows them.
struct RateWindow: Sendable {
    enum Admission: Equatable {
        case admitted(id: UInt64)
        /// The call does not fit before this instant (the oldest call leaves the window,
        /// or the next start is due), unless a correction makes room sooner.
        case wait(until: ContinuousClock.Instant)
    }

    private struct Entry {
        var id: UInt64
        var start: ContinuousClock.Instant
        var tokens: Int
    }

    let window: Duration
    /// The limits in force: the configured ones, or what ``AdaptiveLimit`` learned, times
    /// this copy's share.
    var requestLimit: Int?
    var tokenLimit: Int?
    private var entries: [Entry] = []
    private(set) var lastID: UInt64 = 0
    /// When the next start is due under the spacing rule, before the burst allowance.
    private var theoreticalNextStart: ContinuousClock.Instant?

    init(limits: RateLimiter.Limits) {
        window = limits.window
        requestLimit = limits.requests
        tokenLimit = limits.tokens
    }

    /// Admits a call estimated at `estimatedTokens` at `now` when it fits the limits.
    mutating func admit(estimatedTokens: Int, at now: ContinuousClock.Instant) -> Admission {
        prune(at: now)
        if case .wait(let until) = admission(estimatedTokens: estimatedTokens, at: now) { return .wait(until: until) }
        if let spacing {
            theoreticalNextStart = max(theoreticalNextStart ?? now, now) + spacing
        }
        lastID += 1
        entries.append(Entry(id: lastID, start: now, tokens: estimatedTokens))
        return .admitted(id: lastID)
    }

    /// Whether a call would be admitted at `now`, changing nothing; nil when it would.
    func wouldWait(estimatedTokens: Int, at now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        if case .wait(let until) = admission(estimatedTokens: estimatedTokens, at: now) { return until }
        return nil
    }

    private func admission(estimatedTokens: Int, at now: ContinuousClock.Instant) -> Admission {
        let live = entries.filter { now - $0.start < window }
        let tokensInWindow = live.reduce(0) { $0 + $1.tokens }
        let requestsFit = requestLimit.map { live.count < $0 } ?? true
        // A call larger than the whole token limit still goes alone, or it never would.
        let tokensFit = tokenLimit.map { tokensInWindow + estimatedTokens <= $0 || live.isEmpty } ?? true
        guard requestsFit && tokensFit else {
            return .wait(until: (live.map(\.start).min() ?? now) + window)
        }
        if let spacing, let due = theoreticalNextStart, due - burstAllowance(spacing) > now {
            return .wait(until: due - burstAllowance(spacing))
        }
        return .admitted(id: 0)
    }

    /// The gap between starts at the request limit.
    private var spacing: Duration? {
        requestLimit.map { window / max(1, $0) }
    }

    /// How far ahead of its spacing a start may be: one second's worth of calls at once.
    private func burstAllowance(_ spacing: Duration) -> Duration {
        guard let requestLimit else { return .zero }
        let perSecond = Double(requestLimit) / (window / .seconds(1))
        return spacing * (max(1, Int(perSecond)) - 1)
    }

    /// Forgets calls that have left the window, so the window's memory stays bounded.
    mutating func prune(at now: ContinuousClock.Instant) {
        let window = window
        entries.removeAll { now - $0.start >= window }
    }

    /// Replaces a call's estimate with the tokens it really used.
    mutating func correct(id: UInt64, actualTokens: Int) {
        guard let index = entries.firstIndex(where: { $0.id == id }) else { return }
        entries[index].tokens = actualTokens
    }
}
