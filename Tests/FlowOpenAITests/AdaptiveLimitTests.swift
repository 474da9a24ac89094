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

    @Test("accepted calls grow the limit back by a twentieth of where it was refused per second of calls, a quiet spell counting as one second, never above the configured or announced limit")
    func growth() {
        var limit = AdaptiveLimit(.init(requests: 40, window: .seconds(60)))
        limit.refused(call: 1, issued: 1)
        #expect(limit.requestLimit == 20, "nothing announced: halved")
        // Refused at 40: each second of accepted calls adds 40/20 = 2, a quarter second 0.5
        // (all exact in binary). The first accepted call only starts the clock.
        limit.accepted(at: origin)
        limit.accepted(at: origin + .milliseconds(250))
        #expect(limit.requestLimit == 20, "20.5")
        limit.accepted(at: origin + .milliseconds(500))
        #expect(limit.requestLimit == 21)
        // A minute without calls earns one second's growth, not sixty.
        limit.accepted(at: origin + .seconds(60) + .milliseconds(500))
        #expect(limit.requestLimit == 23)
        for step in 1...100 { limit.accepted(at: origin + .seconds(61) + .seconds(step)) }
        #expect(limit.requestLimit == 40, "never above the configured limit")
        limit.announce(requestsPerMinute: 30, tokensPerMinute: nil)
        #expect(limit.requestLimit == 30)
        for step in 1...100 { limit.accepted(at: origin + .seconds(200) + .seconds(step)) }
        #expect(limit.requestLimit == 30, "never above the announced limit")
    }

    @Test("with the server's limit announced, a refusal at it takes a tenth off; seconds of accepted calls win most of it back, the last of it slowly")
    func refusalUnderAnnouncedLimit() {
        var limit = AdaptiveLimit(.init(requests: 12_000, window: .seconds(60)))
        limit.announce(requestsPerMinute: 1200, tokensPerMinute: nil)
        #expect(limit.requestLimit == 1200)
        limit.refused(call: 1, issued: 20)
        #expect(limit.requestLimit == 1080)
        // Growth aims at the announced 1200: 60 a second, so back to 1140 (95% of where it
        // was refused) in 1 s; from there a tenth as fast, 6 a second, to the edge.
        for step in 0...10 { limit.accepted(at: origin + .milliseconds(100 * step)) }
        #expect(limit.requestLimit.map { abs($0 - 1140) <= 1 } == true, "\(String(describing: limit.requestLimit))")
        for step in 11...20 { limit.accepted(at: origin + .milliseconds(100 * step)) }
        // A second more: 6 at a tenth's pace, plus at most one fast step of 6 if rounding
        // left 1140 a hair short; at full pace it would be back at 1200.
        #expect(limit.requestLimit.map { (1145...1152).contains($0) } == true, "slowly near the edge: \(String(describing: limit.requestLimit))")
        for step in 3...20 { limit.accepted(at: origin + .seconds(step)) }
        #expect(limit.requestLimit == 1200, "and no further than the announced limit")
        // Unannounced, the same refusal would have halved 1200 to 600.
        var unannounced = AdaptiveLimit(.init(requests: 1200, window: .seconds(60)))
        unannounced.refused(call: 1, issued: 20)
        #expect(unannounced.requestLimit == 600)
    }

    @Test("a server that announces nothing: from its first answer the limit starts at one call a second and doubles per second of accepted calls, until the first refusal")
    func slowStart() {
        var limit = AdaptiveLimit(.init(requests: 12_000, window: .seconds(60)))
        limit.accepted(at: origin)
        #expect(limit.requestLimit == 60, "one a second, in a minute's window")
        limit.accepted(at: origin + .seconds(1))
        #expect(limit.requestLimit == 120)
        limit.accepted(at: origin + .seconds(2))
        limit.accepted(at: origin + .seconds(3))
        #expect(limit.requestLimit == 480)
        // Refused at 480 (8 a second): halved, and from there the additive growth.
        limit.refused(call: 4, issued: 4)
        #expect(limit.requestLimit == 240)
        limit.accepted(at: origin + .seconds(4))
        #expect(limit.requestLimit == 264, "a twentieth of 480 per second, not a doubling")

        // A server that announces its limit on its first answer is not slow-started.
        var announced = AdaptiveLimit(.init(requests: 12_000, window: .seconds(60)))
        announced.announce(requestsPerMinute: 1200, tokensPerMinute: nil)
        announced.accepted(at: origin)
        #expect(announced.requestLimit == 1200)
    }

    @Test("with no request limit configured, a 429 invents none: the server's Retry-After holds the calls instead")
    func noConfiguredLimit() {
        var limit = AdaptiveLimit(.init(tokens: 1000, window: .seconds(60)))
        limit.accepted(at: origin)
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
