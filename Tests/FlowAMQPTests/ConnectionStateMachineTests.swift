@testable import FlowAMQP
import FlowCore
import Testing

/// The connection's bookkeeping without a socket: confirms, channel epochs, losing the
/// connection and reconnecting with backoff.
@Suite("the connection's state machine")
struct ConnectionStateMachineTests {
    struct Publish: Equatable {
        var id: Int
        var exchange = "flow.activities"
        var mayResend = true
    }

    func machine() -> ConnectionStateMachine<Publish> {
        ConnectionStateMachine(reconnectBackoff: Backoff(initial: .milliseconds(100), maximum: .milliseconds(400), jitter: 0))
    }

    @Test("confirms settle publishes by sequence number, one at a time or all up to a tag")
    func confirms() {
        var machine = machine()
        for id in 1...5 { machine.published(Publish(id: id)) }
        var settled = machine.confirmed(upTo: 2, multiple: false)
        #expect(settled.map(\.id) == [2])
        settled = machine.confirmed(upTo: 4, multiple: true)
        #expect(settled.map(\.id) == [1, 3, 4])
        settled = machine.confirmed(upTo: 9, multiple: false)
        #expect(settled.isEmpty, "a tag that matches nothing settles nothing")
        #expect(machine.unconfirmed.map(\.publish.id) == [5])
    }

    @Test("a lost connection re-sends what may be re-sent, fails the rest, and reconnects after a growing wait")
    func losingTheConnection() {
        var machine = machine()
        machine.published(Publish(id: 1))
        machine.published(Publish(id: 2, mayResend: false))
        _ = machine.channelOpened(3)
        let start = ContinuousClock.now
        let orphans = machine.lost(at: start, recovers: true, random: 0.5) { $0.mayResend }
        #expect(orphans.resend.map(\.id) == [1])
        #expect(orphans.fail.map(\.id) == [2])
        #expect(machine.unconfirmed.isEmpty)
        #expect(machine.epoch(of: 3) == nil, "a channel of the lost connection is gone")
        #expect(!machine.reconnectDue(at: start + .milliseconds(99)))
        #expect(machine.reconnectDue(at: start + .milliseconds(100)))
        var waits: [Duration] = []
        var now = start + .milliseconds(100)
        for _ in 0..<4 {
            machine.reconnectFailed(at: now, random: 0.5)
            let wait = machine.untilReconnect(from: now)!
            waits.append(wait)
            now += wait
        }
        #expect(waits == [.milliseconds(200), .milliseconds(400), .milliseconds(400), .milliseconds(400)])
        machine.opening()
        machine.connected()
        #expect(machine.isConnected)
        machine.published(Publish(id: 3))
        #expect(machine.unconfirmed.map(\.sequence) == [1], "a new connection numbers its publishes from 1")
    }

    @Test("without recovery a lost connection fails every unconfirmed publish and closes")
    func noRecovery() {
        var machine = machine()
        machine.published(Publish(id: 1))
        let orphans = machine.lost(at: .now, recovers: false, random: 0.5) { $0.mayResend }
        #expect(orphans.fail.map(\.id) == [1])
        #expect(orphans.resend.isEmpty)
        #expect(machine.phase == .closed)
        #expect(!machine.reconnectDue(at: .now + .seconds(60)))
    }

    @Test("a closed publish channel fails the publishes its error names and re-sends the bystanders")
    func publishChannelClosed() {
        var machine = machine()
        machine.published(Publish(id: 1, exchange: "missing"))
        machine.published(Publish(id: 2))
        let error = AMQPError(.notFound, "could not use channel 1", replyCode: 404, exchange: "missing")
        let orphans = machine.publishChannelReopened { $0.exchange == error.exchange }
        #expect(orphans.fail.map(\.id) == [1])
        #expect(orphans.resend.map(\.id) == [2])
        machine.published(Publish(id: 3))
        #expect(machine.unconfirmed.map(\.sequence) == [1])
    }

    @Test("each opened channel has a new epoch, so a settle meant for an earlier one is told apart")
    func epochs() {
        var machine = machine()
        let first = machine.channelOpened(3)
        machine.channelClosed(3)
        #expect(machine.epoch(of: 3) == nil)
        let second = machine.channelOpened(3)
        #expect(second != first)
        #expect(machine.epoch(of: 3) == second)
    }

    @Test("broker errors carry the reply code and the exchange or queue they are about, as fields")
    func structuredErrors() throws {
        let configuration = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:5672/")
        let closed = BrokerErrors.error(code: 404, text: "NOT_FOUND - no exchange 'flow.nowhere' in vhost '/'", operation: .useChannel(1), configuration: configuration)
        #expect(closed.code == .notFound)
        #expect(closed.replyCode == 404)
        #expect(closed.exchange == "flow.nowhere")
        #expect(closed.queue == nil)
        let declared = BrokerErrors.error(code: 406, text: "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/'", operation: .declareQueue("q"), configuration: configuration)
        #expect(declared.code == .preconditionFailed)
        #expect(declared.queue == "q")
        let login = BrokerErrors.error(code: 403, text: "ACCESS_REFUSED", operation: .logIn, configuration: configuration)
        let permission = BrokerErrors.error(code: 403, text: "ACCESS_REFUSED", operation: .declareExchange("x"), configuration: configuration)
        #expect(login.message.contains("refused user 'guest'"))
        #expect(permission.message.contains("may not declare exchange 'x'"))
        #expect(permission.exchange == "x")
    }
}
