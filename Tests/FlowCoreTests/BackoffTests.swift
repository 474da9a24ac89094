import FlowCore
import Testing

@Suite("backoff")
struct BackoffTests {
    @Test("waits grow by the multiplier up to the maximum; the middle draw has no spread")
    func growth() {
        let backoff = Backoff(initial: .milliseconds(100), multiplier: 3, maximum: .seconds(1), jitter: 0.2)
        let waits = (1...5).map { backoff.delay(afterFailures: $0, random: 0.5) }
        #expect(waits == [.milliseconds(100), .milliseconds(300), .milliseconds(900), .seconds(1), .seconds(1)])
    }

    @Test("the spread stays within the jitter fraction either way, and never passes the maximum")
    func spread() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .milliseconds(150), jitter: 0.2)
        #expect(backoff.delay(afterFailures: 1, random: 0) == .milliseconds(80))
        #expect(backoff.delay(afterFailures: 1, random: 1) == .milliseconds(120))
        #expect(backoff.delay(afterFailures: 2, random: 1) == .milliseconds(150), "capped, not 180 ms")
        #expect(backoff.delay(afterFailures: 2, random: 0) == .milliseconds(120))
        for _ in 0..<100 {
            let wait = backoff.delay(afterFailures: 1)
            #expect(wait >= .milliseconds(80) && wait <= .milliseconds(120))
        }
    }

    @Test("a multiplier below 1 and a jitter outside 0…1 are clamped rather than shrinking or overshooting")
    func clamps() {
        let backoff = Backoff(initial: .seconds(1), multiplier: 0.5, maximum: .seconds(10), jitter: 3)
        #expect(backoff.multiplier == 1)
        #expect(backoff.jitter == 1)
        #expect(backoff.delay(afterFailures: 4, random: 0.5) == .seconds(1))
    }
}
