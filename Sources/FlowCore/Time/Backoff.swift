/// Exponential backoff with jitter, capped: the one rule for waiting between tries, used
/// where the system tries again by itself (a suspended workflow, a reply the store could not
/// take, a reconnection).
///
/// The wait after the `n`-th consecutive failure is `initial × multiplier^(n−1)`, capped at
/// `maximum`, then spread by ±`jitter` of itself (and never past `maximum`), so copies that
/// failed together do not try again together. Worker retries, coordinator relaunches and
/// reply handling, reconnections and the OpenAI client's HTTP retries all use it.
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var multiplier: Double
    public var maximum: Duration
    /// The fraction of the wait that is random, in 0...1.
    public var jitter: Double

    public init(initial: Duration, multiplier: Double = 2, maximum: Duration, jitter: Double = 0.2) {
        // A backoff never shrinks, and its spread is a fraction of the wait.
        self.initial = initial
        self.multiplier = max(multiplier, 1)
        self.maximum = maximum
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The wait after `failures` consecutive failures (1 for the first). `random` is a draw
    /// in 0..<1 (the caller's generator, so the value is reproducible in tests); 0.5 gives
    /// the wait without spread.
    public func delay(afterFailures failures: Int, random: Double) -> Duration {
        var seconds = initial.seconds
        for _ in 1..<max(failures, 1) {
            seconds *= multiplier
            if seconds >= maximum.seconds { break }
        }
        seconds = min(seconds, maximum.seconds)
        let spread = seconds * jitter * (2 * min(max(random, 0), 1) - 1)
        return .nanoseconds(Int64((min(seconds + spread, maximum.seconds) * 1e9).rounded()))
    }

    /// The same, drawing the spread from the system's generator.
    public func delay(afterFailures failures: Int) -> Duration {
        delay(afterFailures: failures, random: Double.random(in: 0..<1))
    }
}
