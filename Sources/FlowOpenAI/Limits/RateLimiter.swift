import FlowCore
import Foundation
import Synchronization

/// Keeps a worker's calls to each model under its requests-per-window and tokens-per-window
/// limits, under what the server says (`Retry-After`, the `x-ratelimit-*` headers), and
/// under this copy's share of the limits when several copies of the actor use them.
///
/// A sliding window with spaced starts (``RateWindow``), not a token bucket: in any window
/// at most `requests` calls start and at most `tokens` tokens are spent, so a burst can
/// never exceed the limit the way a full bucket's would. Tokens are estimated before a call
/// and corrected to the reported usage after it.
///
/// Calls that wait are served by priority, then by rate key in weighted turns
/// (``FairQueue``), each key also held to its own configured limit.
public actor RateLimiter {
    public struct Limits: Sendable, Equatable {
        public var requests: Int?
        public var tokens: Int?
        public var window: Duration
        /// The limits and weights of named rate keys (tenants, projects); a key not named
        /// here has weight 1 and only the model's limits.
        public var keys: [String: KeyLimits]

        public init(requests: Int? = nil, tokens: Int? = nil, window: Duration = .seconds(60), keys: [String: KeyLimits] = [:]) {
            self.requests = requests
            self.tokens = tokens
            self.window = window
            self.keys = keys
        }
    }

    /// One rate key's own limits, per the limiter's window, and its weight in the turns.
    public struct KeyLimits: Sendable, Equatable, Codable {
        public var requests: Int?
        public var tokens: Int?
        public var weight: Int

        public init(requests: Int? = nil, tokens: Int? = nil, weight: Int = 1) {
            self.requests = requests
            self.tokens = tokens
            self.weight = weight
        }
    }

    /// A call admitted by the limiter, to be corrected with its real usage.
    public struct Permit: Sendable {
        let model: String
        /// The call's number in its model's window.
        let id: UInt64
        let key: String
        let keyID: UInt64
        /// The instant the limiter let the call go, as its window counted it.
        public let admittedAt: ContinuousClock.Instant
    }

    private struct Waiter: Sendable {
        let continuation: CheckedContinuation<Permit, any Error>
        let tokens: Int
        let key: String
    }

    private let limits: Limits
    private var windows: [String: RateWindow] = [:]
    /// Each rate key's own window, by model and key.
    private var keyWindows: [String: [String: RateWindow]] = [:]
    /// What each model's server lets us use, learned from its answers.
    private var adaptive: [String: AdaptiveLimit] = [:]
    /// Until when the server asked us to hold calls to a model.
    private var pausedUntil: [String: ContinuousClock.Instant] = [:]
    private var queues: [String: FairQueue<Waiter>] = [:]
    private var pumping: Set<String> = []
    /// The models whose server has answered a call: until it has, its limits are unknown.
    private var answered: Set<String> = []
    /// When the call sent to learn an unanswered model's limits was let go.
    private var probeLetGoAt: [String: ContinuousClock.Instant] = [:]
    /// How many copies of the actor share the limits, this one included.
    public private(set) var copies = 1
    private let clock = ContinuousClock()

    public init(limits: Limits) {
        self.limits = limits
    }

    /// How often a waiting call looks again, for a correction that makes room early.
    static let recheckInterval: Duration = .milliseconds(20)

    /// How long the other calls to a model wait for the answer to its first call (the
    /// probe), whose headers announce the server's limits. Sent at once at the configured
    /// limit, a backlog's first burst would reach a server with a lower one before any
    /// answer could say so, and be refused; a server that never answers sees one call per
    /// hold until one does.
    static let probeHold: Duration = .seconds(2)

    /// Waits until a call to `model` estimated at `estimatedTokens` fits the limits and its
    /// turn comes, then counts it.
    public func acquire(model: String, estimatedTokens: Int, rateKey: String? = nil, priority: ActivityPriority = .normal) async throws -> Permit {
        try Task.checkCancellation()
        let key = rateKey ?? ""
        let ticket = TicketBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                ticket.set(
                    queues[model, default: FairQueue()].enqueue(
                        Waiter(continuation: continuation, tokens: estimatedTokens, key: key), key: key, weight: limits.keys[key]?.weight ?? 1, priority: priority
                    )
                )
                startPump(model)
            }
        } onCancel: {
            Task { await self.abandon(ticket, model: model) }
        }
    }

    private func abandon(_ box: TicketBox, model: String) {
        guard let ticket = box.ticket, let waiter = queues[model]?.remove(ticket) else { return }
        waiter.continuation.resume(throwing: CancellationError())
    }

    private func startPump(_ model: String) {
        guard !pumping.contains(model) else { return }
        pumping.insert(model)
        Task { await self.pump(model) }
    }

    /// Lets waiting calls to `model` go, one at a time in their turn, while the limits
    /// allow; sleeps until something may have changed when they do not.
    private func pump(_ model: String) async {
        defer { pumping.remove(model) }
        while let queue = queues[model], !queue.isEmpty {
            let now = clock.now
            if let paused = pausedUntil[model], paused > now {
                try? await Task.sleep(until: paused, clock: clock)
                continue
            }
            if !answered.contains(model), let probe = probeLetGoAt[model], now - probe < Self.probeHold {
                try? await Task.sleep(until: min(probe + Self.probeHold, now + Self.recheckInterval), clock: clock)
                continue
            }
            let window = window(model)
            let ready = { (key: String, waiter: Waiter) -> Bool in
                window.wouldWait(estimatedTokens: waiter.tokens, at: now) == nil
                    && self.keyWindow(model, key).wouldWait(estimatedTokens: waiter.tokens, at: now) == nil
            }
            if let (_, waiter) = queues[model]!.take(where: ready) {
                // `ready` saw room in both windows at this instant and nothing ran since, so
                // both count the call; were that ever broken, the caller hears of it rather
                // than waiting for ever.
                guard case .admitted(let id) = windows[model]!.admit(estimatedTokens: waiter.tokens, at: now),
                    case .admitted(let keyID) = keyWindows[model]![waiter.key]!.admit(estimatedTokens: waiter.tokens, at: now)
                else {
                    waiter.continuation.resume(throwing: OpenAIError(.rateLimited, "the rate limiter chose a call its window then refused; the attempt is retried", retryable: true))
                    continue
                }
                if !answered.contains(model) { probeLetGoAt[model] = now }
                waiter.continuation.resume(returning: Permit(model: model, id: id, key: waiter.key, keyID: keyID, admittedAt: now))
                continue
            }
            let due = window.wouldWait(estimatedTokens: 1, at: now) ?? (now + Self.recheckInterval)
            try? await Task.sleep(until: min(due, now + Self.recheckInterval), clock: clock)
        }
    }

    /// Replaces a call's estimate with the tokens it really used.
    public func correct(_ permit: Permit, actualTokens: Int) {
        windows[permit.model]?.correct(id: permit.id, actualTokens: actualTokens)
        keyWindows[permit.model]?[permit.key]?.correct(id: permit.keyID, actualTokens: actualTokens)
    }

    /// What ``observe(_:status:headers:)`` learned from an answer.
    public struct Observation: Sendable {
        /// How long the server asked to wait, if it did.
        public var wait: Duration?
        /// The requests per window this copy may make from now on; nil for no limit.
        public var requestLimit: Int?
    }

    /// What the server answered a call: its announced limits set the ceiling, a 429 cuts
    /// the request limit and an accepted call grows it back (``AdaptiveLimit``), and a wait
    /// it asked for (`Retry-After`, `retry-after-ms`, or a used-up `x-ratelimit-remaining-*`
    /// with its reset) holds every call to the model.
    @discardableResult
    public func observe(_ permit: Permit, status: Int, headers: [String: String]) -> Observation {
        let model = permit.model
        answered.insert(model)
        var learned = adaptive[model, default: AdaptiveLimit(limits)]
        learned.announce(
            requestsPerMinute: headers["x-ratelimit-limit-requests"].flatMap(Int.init), tokensPerMinute: headers["x-ratelimit-limit-tokens"].flatMap(Int.init)
        )
        if status == 429 {
            learned.refused(call: permit.id, issued: window(model).lastID)
        } else if (200..<300).contains(status) {
            learned.accepted(at: clock.now)
        }
        adaptive[model] = learned
        applyLimits(model)
        let wait = ServerWait.duration(from: headers)
        if let wait, status == 429 || headers.keys.contains(where: { $0.hasPrefix("x-ratelimit-remaining-") }) {
            pause(model: model, for: wait)
        }
        return Observation(wait: wait, requestLimit: windows[model]?.requestLimit)
    }

    /// The limits in force for `model` now, per window, for all copies together:
    /// configured, or learned.
    public func effectiveLimits(model: String) -> (requests: Int?, tokens: Int?) {
        let learned = adaptive[model, default: AdaptiveLimit(limits)]
        return (learned.requestLimit, learned.tokenLimit)
    }

    /// The limits this copy holds itself to for `model` now: its share of the effective ones.
    public func shareOfLimits(model: String) -> (requests: Int?, tokens: Int?) {
        let window = window(model)
        return (window.requestLimit, window.tokenLimit)
    }

    /// Sets how many copies of the actor share the limits (this one included), as
    /// ``PeerCount`` sees them: each copy keeps to an equal share.
    public func share(among copies: Int) {
        let copies = max(1, copies)
        guard copies != self.copies else { return }
        self.copies = copies
        for model in windows.keys { applyLimits(model) }
    }

    /// Holds every call to `model` for `duration`: the server said to wait.
    public func pause(model: String, for duration: Duration) {
        let until = clock.now + duration
        if let current = pausedUntil[model], current >= until { return }
        pausedUntil[model] = until
    }

    private func scaled(_ limit: Int?) -> Int? {
        limit.map { max(1, $0 / copies) }
    }

    private func applyLimits(_ model: String) {
        let learned = adaptive[model, default: AdaptiveLimit(limits)]
        var window = window(model)
        window.requestLimit = scaled(learned.requestLimit)
        window.tokenLimit = scaled(learned.tokenLimit)
        windows[model] = window
        for (key, var keyWindow) in keyWindows[model] ?? [:] {
            keyWindow.requestLimit = scaled(limits.keys[key]?.requests)
            keyWindow.tokenLimit = scaled(limits.keys[key]?.tokens)
            keyWindows[model]![key] = keyWindow
        }
    }

    private func window(_ model: String) -> RateWindow {
        if let window = windows[model] { return window }
        var window = RateWindow(limits: limits)
        window.requestLimit = scaled(limits.requests)
        window.tokenLimit = scaled(limits.tokens)
        windows[model] = window
        return window
    }

    private func keyWindow(_ model: String, _ key: String) -> RateWindow {
        if let window = keyWindows[model]?[key] { return window }
        var window = RateWindow(limits: .init(window: limits.window))
        window.requestLimit = scaled(limits.keys[key]?.requests)
        window.tokenLimit = scaled(limits.keys[key]?.tokens)
        keyWindows[model, default: [:]][key] = window
        return window
    }
}

/// Where a waiting call's place in the queue is kept for its cancellation handler, which
/// runs outside the limiter.
private final class TicketBox: Sendable {
    private let stored = Mutex<FairQueueTicket?>(nil)

    var ticket: FairQueueTicket? { stored.withLock { $0 } }

    func set(_ ticket: FairQueueTicket) { stored.withLock { $0 = ticket } }
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
