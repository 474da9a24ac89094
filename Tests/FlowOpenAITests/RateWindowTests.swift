@testable import FlowOpenAI
import Testing

/// The limiter's sliding window as a value, on instants the test sets: no waiting, so
/// "stays near the limit" holds on any machine, however loaded.
@Suite("the rate limiter's window, without a clock")
struct RateWindowTests {
    let origin = ContinuousClock.now

    /// `callers` calls waiting at once, each looking again when the window says or every
    /// recheck interval, as ``RateLimiter/acquire(model:estimatedTokens:)`` does; the
    /// instants they are admitted at, in order.
    func admissions(callers: Int, limits: RateLimiter.Limits, tokens: Int = 1) -> [Duration] {
        var window = RateWindow(limits: limits)
        var nextTry = Array(repeating: origin, count: callers)
        var admitted: [Duration] = []
        var waiting = Set(0..<callers)
        while let caller = waiting.min(by: { nextTry[$0] < nextTry[$1] || (nextTry[$0] == nextTry[$1] && $0 < $1) }) {
            let now = nextTry[caller]
            switch window.admit(estimatedTokens: tokens, at: now) {
            case .admitted:
                admitted.append(now - origin)
                waiting.remove(caller)
            case .wait(let until):
                #expect(until > now, "a call told to wait must be told a later instant")
                nextTry[caller] = min(until, now + RateLimiter.recheckInterval)
            }
        }
        return admitted
    }

    @Test("twenty calls at once under 5 per second: never six in a window, and each waits no longer than the window makes it")
    func requestLimit() {
        let window: Duration = .seconds(1)
        let times = admissions(callers: 20, limits: .init(requests: 5, window: window))
        #expect(times.count == 20)
        for index in 0..<(times.count - 5) {
            #expect(times[index + 5] - times[index] >= window, "six calls within one window at \(index)")
        }
        // Near the limit: the first five at once, then each as soon as the call five before
        // it leaves the window (looked at every recheck interval at the latest).
        #expect(times.prefix(5).allSatisfy { $0 == .zero })
        for index in 5..<times.count {
            #expect(times[index] <= times[index - 5] + window, "call \(index) waited past its turn: \(times[index])")
        }
        #expect(times.last! == .seconds(3))
    }

    @Test("the token limit admits what fits, lets one call larger than the limit go alone, and a correction makes room at once")
    func tokenLimit() {
        var window = RateWindow(limits: .init(tokens: 1000, window: .seconds(120)))
        guard case .admitted(let first) = window.admit(estimatedTokens: 600, at: origin) else {
            Issue.record("the first call must be admitted")
            return
        }
        #expect(window.admit(estimatedTokens: 600, at: origin + .seconds(1)) == .wait(until: origin + .seconds(120)))
        window.correct(id: first, actualTokens: 50)
        guard case .admitted = window.admit(estimatedTokens: 600, at: origin + .seconds(2)) else {
            Issue.record("after the correction 50 + 600 fit in 1000")
            return
        }
        #expect(window.admit(estimatedTokens: 600, at: origin + .seconds(3)) == .wait(until: origin + .seconds(120)))
        // Once the window has passed, even a call above the whole limit goes, alone.
        guard case .admitted = window.admit(estimatedTokens: 5000, at: origin + .seconds(125)) else {
            Issue.record("a call larger than the limit must still go when the window is empty")
            return
        }
        #expect(window.admit(estimatedTokens: 1, at: origin + .seconds(126)) == .wait(until: origin + .seconds(245)))
    }

    @Test("starts are spaced at the limit's rate after a burst of one second's worth, since servers enforce a minute's limit over shorter periods")
    func spacing() {
        // 300 a minute: a burst of 5 at once, then one every 200 ms.
        let times = admissions(callers: 20, limits: .init(requests: 300, window: .seconds(60)))
        #expect(times.prefix(5).allSatisfy { $0 == .zero })
        for index in 5..<20 {
            #expect(times[index] == .milliseconds(200 * (index - 4)), "call \(index) at \(times[index])")
        }
        // Below one call a second, no burst at all: 30 a minute is one every 2 s.
        let slow = admissions(callers: 3, limits: .init(requests: 30, window: .seconds(60)))
        #expect(slow == [.zero, .seconds(2), .seconds(4)])
    }
}

