import FlowTransport

/// What an ``InMemoryBroker`` does to a publish instead of taking it normally.
public enum PublishFault: Sendable, Equatable {
    /// The broker refuses it: the publish throws this error (a `basic.nack` is
    /// ``AMQPError/Code/publishNacked``) and nothing is queued.
    case refuse(AMQPError)
    /// The broker confirms it and then loses it, as a queue that lost its data would.
    case lose
    /// The message arrives twice, as after a publish re-sent across a reconnection.
    case duplicate
    /// The connection drops after the broker took the message but before the confirm came
    /// back: the transport re-sends it (so it arrives twice) and the publish succeeds;
    /// the connection's unsettled deliveries go back to their queues.
    case dropConnectionBeforeConfirm
}

extension InMemoryBroker {
    struct FaultRule {
        var fault: PublishFault
        var remaining: Int
        var matches: @Sendable (AMQPMessage) -> Bool
    }

    /// The next `times` publishes that `matching` accepts get `fault` instead of the normal
    /// treatment.
    public func inject(_ fault: PublishFault, times: Int = 1, matching: @escaping @Sendable (AMQPMessage) -> Bool = { _ in true }) {
        state.withLock { $0.faults.append(FaultRule(fault: fault, remaining: times, matches: matching)) }
    }
}

extension InMemoryBroker.State {
    mutating func takeFault(for message: AMQPMessage) -> PublishFault? {
        guard let index = faults.firstIndex(where: { $0.remaining > 0 && $0.matches(message) }) else { return nil }
        faults[index].remaining -= 1
        let fault = faults[index].fault
        if faults[index].remaining == 0 { faults.remove(at: index) }
        return fault
    }

    /// The connection drops and recovers: a new generation, its deliveries back in their queues.
    mutating func drop(_ connectionID: Int) {
        connections[connectionID]!.generation += 1
        connections[connectionID]!.recoveryCount += 1
        for (id, consumer) in consumers where consumer.connectionID == connectionID { requeueUnsettled(of: id) }
    }
}
