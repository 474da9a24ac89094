@testable import FlowOpenAI
import Testing

/// The limit learned from the server's answers, as a value on instants the test sets.
@Suite("the limit learned from the server, without a clock")
struct AdaptiveLimitTests {
    let origin = ContinuousClock.now
    let minute = RateLimiter.Limits(requests: 500, tokens: 200_000, window: .seconds(60))

    @Test("the server's announced limits cap the configured ones, scaled to the limiter's window")
    func announced() {
        var limit = AdaptiveLimit(minute)
        limit.announce(requestsPerMinute: 60, tokensPerMinute: 1_000_000)
        #expect(limit.requestLimit == 60)
        #expect(limit.tokenLimit == 200_000, "the configured token limit is the lower")
        var perSecond = AdaptiveLimit(.init(requests: 50, window: .seconds(1)))
        perSecond.announce(requestsPerMinute: 300, tokensPerMinute: nil)
        #expect(perSecond.requestLimit == 5, "300 a minute is 5 a second")
        // An announcement above the configuration changes nothing.
        var generous = AdaptiveLimit(minute)
        generous.announce(requestsPerMinute: 10_000, tokensPerMinute: nil)
        #expect(generous.requestLimit == 500)
    }

    @Test("a 429 halves the limit once per round: refusals of calls let go before the last halving say nothing new")
    func refusals() {
        var limit = AdaptiveLimit(minute)
        // Calls 1 to 10 were on their way when the server began refusing; 10 had been let go.
        for call in 1...10 { limit.refused(call: UInt64(call), issued: 10) }
        #expect(limit.requestLimit == 250, "ten refusals of one round are one")
        // Call 11, let go after the halving, is refused: a new round.
        limit.refused(call: 11, issued: 14)
        #expect(limit.requestLimit == 125)
        limit.refused(call: 13, issued: 15)
        #expect(limit.requestLimit == 125, "call 13 went before the second halving")
        for round in 0..<20 { limit.refused(call: UInt64(100 + round * 10), issued: UInt64(105 + round * 10)) }
        #expect(limit.requestLimit == 1, "never below one call a window")
    }

    @Test("accepted calls grow the limit back by one for two windows' worth, never above the configured or announced limit")
    func growth() {
        var limit = AdaptiveLimit(.init(requests: 40, window: .seconds(60)))
        limit.refused(call: 1, issued: 1)
        #expect(limit.requestLimit == 20)
        // Each accepted call adds 1/(2·limit): from 20, the 41st takes it past 21 and the
        // 84th past 22 (20.98 after 40, 22.001 after 84, in double precision).
        for _ in 0..<40 { limit.accepted() }
        #expect(limit.requestLimit == 20)
        limit.accepted()
        #expect(limit.requestLimit == 21)
        for _ in 0..<43 { limit.accepted() }
        #expect(limit.requestLimit == 22)
        for _ in 0..<10_000 { limit.accepted() }
        #expect(limit.requestLimit == 40)
        limit.announce(requestsPerMinute: 30, tokensPerMinute: nil)
        #expect(limit.requestLimit == 30)
        for _ in 0..<1000 { limit.accepted() }
        #expect(limit.requestLimit == 30)
    }

    @Test("with no request limit configured, a 429 invents none: the server's Retry-After holds the calls instead")
    func noConfiguredLimit() {
        var limit = AdaptiveLimit(.init(tokens: 1000, window: .seconds(60)))
        limit.accepted()
        limit.refused(call: 1, issued: 1)
        #expect(limit.requestLimit == nil)
        #expect(limit.tokenLimit == 1000)
    }

    @Test("the window admits by the learned limit: after a refusal, half as many calls fit")
    func windowTakesTheLearnedLimit() {
        var window = RateWindow(limits: .init(requests: 10, window: .seconds(1)))
        var limit = AdaptiveLimit(.init(requests: 10, window: .seconds(1)))
        limit.refused(call: 1, issued: 1)
        window.requestLimit = limit.requestLimit
        var admitted = 0
        while case .admitted = window.admit(estimatedTokens: 1, at: origin) { admitted += 1 }
        #expect(admitted == 5)
    }
}
