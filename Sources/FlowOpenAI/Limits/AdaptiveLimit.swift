/// One model's limits as the server lets them be used: what the configuration allows,
/// capped by what the server announces (`x-ratelimit-limit-requests`, `-tokens`), halved
/// when it refuses a call with 429, and grown back slowly by the calls it accepts:
/// additive increase, multiplicative decrease, as TCP does with its window. So a configured
/// RPM above the server's real one costs a few 429s, not a stream of them.
///
/// A value: ``RateLimiter`` drives it with the clock, tests with instants of their own.
struct AdaptiveLimit: Sendable, Equatable {
    let configured: RateLimiter.Limits
    /// The server's limits, per the limiter's window.
    private(set) var announcedRequests: Int?
    private(set) var announcedTokens: Int?
    /// The requests per window allowed now; fractional, so that growth can be gradual.
    private var requests: Double?
    /// The last call let go when the limit last halved.
    private var decreaseMark: UInt64?

    /// What a refusal keeps of the limit.
    static let decrease = 0.5

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

    /// The server's announced limits, per minute as OpenAI's headers give them.
    mutating func announce(requestsPerMinute: Int?, tokensPerMinute: Int?) {
        let scale = configured.window / .seconds(60)
        if let requestsPerMinute {
            announcedRequests = max(1, Int(Double(requestsPerMinute) * scale))
            requests = min(requests ?? .infinity, requestCeiling)
        }
        if let tokensPerMinute { announcedTokens = max(1, Int(Double(tokensPerMinute) * scale)) }
    }

    /// The server accepted a call: the limit grows by one request for every two windows'
    /// worth of accepted calls, up to its ceiling. Slower than it falls, so that the limit
    /// spends its time below the point where the server refuses.
    mutating func accepted() {
        guard let current = requests, current < requestCeiling else { return }
        requests = min(requestCeiling, current + 1 / (2 * current))
    }

    /// The server refused call number `call` (429) when `issued` calls had been let go:
    /// the limit halves, once per round. The calls already on their way when the server
    /// began refusing are refused too, and they say nothing new, so a refusal of a call let
    /// go before the last decrease is ignored, as TCP reacts once per window of loss. With
    /// no request limit at all there is nothing to halve: the server's `Retry-After`
    /// pauses the calls instead.
    mutating func refused(call: UInt64, issued: UInt64) {
        guard let current = requests else { return }
        if let decreaseMark, call <= decreaseMark { return }
        decreaseMark = issued
        requests = max(1, current * Self.decrease)
    }
}
