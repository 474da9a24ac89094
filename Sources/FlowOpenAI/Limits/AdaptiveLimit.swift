import Foundation

/// One model's limits as the server lets them be used: what the configuration allows,
/// capped by what the server announces (`x-ratelimit-limit-requests`, `-tokens`), cut when
/// it refuses a call with 429, and grown back by the calls it accepts: additive increase,
/// multiplicative decrease, as TCP does with its window. So a configured RPM above the
/// server's real one costs a few 429s, not a stream of them.
///
/// How far a refusal cuts depends on what the server has said. With its limit announced,
/// a refusal at that limit is the server's short-period enforcement meeting our arrival
/// jitter (or another client of the same key), not an overshoot of unknown size: a tenth
/// off lets its bucket refill while its `Retry-After` holds the calls the refusal caught.
/// With nothing announced, the limit halves. Growth runs on time, not on calls: for each
/// second of accepted calls the limit grows by a twentieth of the level it aims at (the
/// announced limit, or where it was last refused), so it is back within seconds whatever
/// the window, instead of needing thousands of calls at a per-minute limit. Near the level
/// of the last refusal growth slows to a tenth, as CUBIC's does near its last loss: copies
/// sharing a limit each come back to the edge where they were refused, and arriving there
/// slowly is what keeps their refusals rare.
///
/// A server that answers without announcing its limits gives no level to start from, so
/// the limit starts again at one call a second and doubles for each second of accepted
/// calls until the first refusal, as TCP's slow start does; a backlog let go at a
/// configured limit far above the server's would be refused by the hundred first.
///
/// A value: ``RateLimiter`` drives it with the clock, tests with instants of their own.
struct AdaptiveLimit: Sendable, Equatable {
    let configured: RateLimiter.Limits
    /// The server's limits, per the limiter's window.
    private(set) var announcedRequests: Int?
    private(set) var announcedTokens: Int?
    /// The requests per window allowed now; fractional, so that growth can be gradual.
    private var requests: Double?
    /// The last call let go when the limit was last cut.
    private var decreaseMark: UInt64?
    /// The request limit when the server last refused a call.
    private var refusedLevel: Double?
    /// When the server last accepted a call.
    private var lastAccepted: ContinuousClock.Instant?
    /// Whether the limit doubles per second of accepted calls: from the server's first
    /// answer, when it announced nothing, to its first refusal or announcement.
    private var slowStart = false

    /// What a refusal keeps of the limit, with the server's limit announced and without.
    static let decreaseWhenAnnounced = 0.9
    static let decreaseWhenUnannounced = 0.5
    /// The share of the level it aims at that the limit regains per second of accepted calls.
    static let growthPerSecond = 0.05
    /// From this share of the last refused level up to it, growth runs at `plateauGrowth` of
    /// its rate.
    static let plateauStart = 0.95
    static let plateauGrowth = 0.1

    init(_ configured: RateLimiter.Limits) {
        self.configured = configured
        requests = configured.requests.map(Double.init)
    }

    /// Requests per window allowed now; nil for no limit.
    var requestLimit: Int? { requests.map { max(1, Int($0)) } }

    /// Tokens per window allowed now; nil for no limit.
    var tokenLimit: Int? { [configured.tokens, announcedTokens].compactMap { $0 }.min() }

    /// The most the request limit grows back to: the configured or announced limit, the
    /// lower of the two.
    private var requestCeiling: Double {
        [configured.requests, announcedRequests].compactMap { $0 }.min().map(Double.init) ?? .infinity
    }

    /// The level growth is measured against: the announced limit, else where the server
    /// last refused, else the configured limit.
    private var growthReference: Double? {
        announcedRequests.map(Double.init) ?? refusedLevel ?? configured.requests.map(Double.init)
    }

    /// The server's announced limits, per minute as OpenAI's headers give them.
    mutating func announce(requestsPerMinute: Int?, tokensPerMinute: Int?) {
        let scale = configured.window / .seconds(60)
        if let requestsPerMinute {
            announcedRequests = max(1, Int(Double(requestsPerMinute) * scale))
            requests = min(requests ?? .infinity, requestCeiling)
            slowStart = false
        }
        if let tokensPerMinute { announcedTokens = max(1, Int(Double(tokensPerMinute) * scale)) }
    }

    /// The server accepted a call at `now`: the limit grows by ``growthPerSecond`` of its
    /// reference for the time since the previous accepted call, up to its ceiling. A quiet
    /// spell counts as at most a second, so that idling earns no burst of growth.
    mutating func accepted(at now: ContinuousClock.Instant) {
        defer { lastAccepted = now }
        guard let current = requests else { return }
        guard let previous = lastAccepted else {
            // The server's first answer, and it announced no limit: start slow.
            if announcedRequests == nil && refusedLevel == nil {
                slowStart = true
                requests = min(current, configured.window / .seconds(1))
            }
            return
        }
        guard current < requestCeiling, let reference = growthReference else { return }
        let seconds = min(1, max(0, (now - previous) / .seconds(1)))
        if slowStart {
            requests = min(requestCeiling, current * pow(2, seconds))
            return
        }
        var rate = Self.growthPerSecond * reference
        if let refusedLevel, current >= refusedLevel * Self.plateauStart, current < refusedLevel { rate *= Self.plateauGrowth }
        requests = min(requestCeiling, current + rate * seconds)
    }

    /// The server refused call number `call` (429) when `issued` calls had been let go:
    /// the limit is cut, once per round. The calls already on their way when the server
    /// began refusing are refused too, and they say nothing new, so a refusal of a call let
    /// go before the last cut is ignored, as TCP reacts once per window of loss. With no
    /// request limit at all there is nothing to cut: the server's `Retry-After` pauses the
    /// calls instead.
    mutating func refused(call: UInt64, issued: UInt64) {
        guard let current = requests else { return }
        if let decreaseMark, call <= decreaseMark { return }
        decreaseMark = issued
        slowStart = false
        refusedLevel = current
        let keep = announcedRequests == nil ? Self.decreaseWhenUnannounced : Self.decreaseWhenAnnounced
        requests = max(1, current * keep)
    }
}
