import Foundation

/// Keeps a worker process's calls to each model under its requests-per-window and
/// tokens-per-window limits, and under what the server says (`Retry-After`, the
/// `x-ratelimit-*` headers).
///
/// A sliding window, not a token bucket: in any window of `window` at most `requests`
/// calls start and at most `tokens` tokens are spent, so a burst can never exceed the
/// limit the way a full bucket's would. Tokens are estimated before a call and corrected
/// to the reported usage after it.
public actor RateLimiter {
    public struct Limits: Sendable, Equatable {
        public var requests: Int?
        public var tokens: Int?
        public var window: Duration

        public init(requests: Int? = nil, tokens: Int? = nil, window: Duration = .seconds(60)) {
            self.requests = requests
            self.tokens = tokens
            self.window = window
        }
    }

    /// A call admitted by the limiter, to be corrected with its real usage.
    public struct Permit: Sendable {
        let model: String
        let id: UInt64
    }

    private let limits: Limits
    private var windows: [String: RateWindow] = [:]
    /// What each model's server lets us use, learned from its answers.
    private var adaptive: [String: AdaptiveLimit] = [:]
    /// Until when the server asked us to hold calls to a model.
    private var pausedUntil: [String: ContinuousClock.Instant] = [:]
    private let clock = ContinuousClock()

    public init(limits: Limits) {
        self.limits = limits
    }

    /// How often a waiting call looks again, for a correction that makes room early.
    static let recheckInterval: Duration = .milliseconds(20)

    /// Waits until a call to `model` estimated at `estimatedTokens` fits the limits, then
    /// counts it.
    public func acquire(model: String, estimatedTokens: Int) async throws -> Permit {
        while true {
            try Task.checkCancellation()
            let now = clock.now
            if let paused = pausedUntil[model], paused > now {
                try await Task.sleep(until: paused, clock: clock)
                continue
            }
            switch windows[model, default: RateWindow(limits: limits)].admit(estimatedTokens: estimatedTokens, at: now) {
            case .admitted(let id):
                return Permit(model: model, id: id)
            case .wait(let until):
                try await Task.sleep(until: min(until, now + Self.recheckInterval), clock: clock)
            }
        }
    }

    /// Replaces a call's estimate with the tokens it really used.
    public func correct(_ permit: Permit, actualTokens: Int) {
        windows[permit.model]?.correct(id: permit.id, actualTokens: actualTokens)
    }

    /// What ``observe(model:status:headers:)`` learned from an answer.
    public struct Observation: Sendable {
        /// How long the server asked to wait, if it did.
        public var wait: Duration?
        /// The requests per window allowed from now on; nil for no limit.
        public var requestLimit: Int?
    }

    /// What the server answered a call to `model`: its announced limits set the ceiling, a
    /// 429 halves the request limit and an accepted call grows it back (``AdaptiveLimit``),
    /// and a wait it asked for (`Retry-After`, `retry-after-ms`, or a used-up
    /// `x-ratelimit-remaining-*` with its reset) holds every call to the model.
    @discardableResult
    public func observe(model: String, status: Int, headers: [String: String]) -> Observation {
        var learned = adaptive[model, default: AdaptiveLimit(limits)]
        learned.announce(
            requestsPerMinute: headers["x-ratelimit-limit-requests"].flatMap(Int.init), tokensPerMinute: headers["x-ratelimit-limit-tokens"].flatMap(Int.init)
        )
        if status == 429 {
            learned.refused(at: clock.now)
        } else if (200..<300).contains(status) {
            learned.accepted()
        }
        adaptive[model] = learned
        windows[model, default: RateWindow(limits: limits)].requestLimit = learned.requestLimit
        windows[model]!.tokenLimit = learned.tokenLimit
        let wait = ServerWait.duration(from: headers)
        if let wait, status == 429 || headers.keys.contains(where: { $0.hasPrefix("x-ratelimit-remaining-") }) {
            pause(model: model, for: wait)
        }
        return Observation(wait: wait, requestLimit: learned.requestLimit)
    }

    /// The limits in force for `model` now, per window: configured, or learned.
    public func effectiveLimits(model: String) -> (requests: Int?, tokens: Int?) {
        let learned = adaptive[model, default: AdaptiveLimit(limits)]
        return (learned.requestLimit, learned.tokenLimit)
    }

    /// Holds every call to `model` for `duration`: the server said to wait.
    public func pause(model: String, for duration: Duration) {
        let until = clock.now + duration
        if let current = pausedUntil[model], current >= until { return }
        pausedUntil[model] = until
    }
}

/// Reads how long the server asks a client to wait from `Retry-After` (seconds, or an
/// HTTP date), `retry-after-ms`, or, when a limit is used up, `x-ratelimit-reset-*`.
public enum ServerWait {
    public static func duration(from headers: [String: String], now: Date = Date()) -> Duration? {
        if let milliseconds = headers["retry-after-ms"].flatMap(Double.init) {
            return .milliseconds(Int64(milliseconds))
        }
        if let value = headers["retry-after"] {
            if let seconds = Double(value) { return .milliseconds(Int64(seconds * 1000)) }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            if let date = formatter.date(from: value) { return .milliseconds(max(0, Int64(date.timeIntervalSince(now) * 1000))) }
        }
        var longest: Duration?
        for kind in ["requests", "tokens"] where headers["x-ratelimit-remaining-\(kind)"].flatMap(Int.init) == 0 {
            if let reset = headers["x-ratelimit-reset-\(kind)"].flatMap(parseResetDuration) {
                longest = max(longest ?? .zero, reset)
            }
        }
        return longest
    }

    /// OpenAI writes resets as Go durations: `1s`, `6m0s`, `20ms`, `1h2m3.5s`.
    static func parseResetDuration(_ text: String) -> Duration? {
        var total = 0.0
        var number = ""
        var index = text.startIndex
        var parsedAny = false
        while index < text.endIndex {
            let character = text[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = text.index(after: index)
                continue
            }
            var unit = String(character)
            let next = text.index(after: index)
            if character == "m", next < text.endIndex, text[next] == "s" {
                unit = "ms"
                index = text.index(after: next)
            } else {
                index = next
            }
            guard let value = Double(number) else { return nil }
            switch unit {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            case "ms": total += value / 1000
            default: return nil
            }
            number = ""
            parsedAny = true
        }
        if !number.isEmpty {
            guard let value = Double(number) else { return nil }
            total += value
            parsedAny = true
        }
        return parsedAny ? .milliseconds(Int64(total * 1000)) : nil
    }
}
