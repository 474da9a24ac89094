import FlowCore

/// The bookkeeping of one connection across its reconnections, as a value with no C and no
/// I/O: whether it is up, which publishes wait for their confirm (in sequence order), the
/// epoch of each channel (so a settle meant for a closed channel is told apart), and when
/// to try to reconnect. The connection loop feeds it what happened and carries out what it
/// answers; tests drive it directly.
///
/// Generic over the publish it tracks, so tests need no continuations.
struct ConnectionStateMachine<Publish> {
    enum Phase: Equatable {
        case connected
        /// Down; the next attempt is due at `at`, after `failures` failed attempts in a row.
        case reconnecting(at: ContinuousClock.Instant, failures: Int)
        /// Closed by its owner or given up on; nothing more happens.
        case closed
    }

    /// What to do with the publishes a lost connection left without a confirm.
    struct Orphans {
        /// Sent again on the next connection (so they may arrive twice).
        var resend: [Publish]
        /// Reported to their callers as lost (they may or may not have arrived).
        var fail: [Publish]
    }

    private(set) var phase: Phase = .connected
    private(set) var unconfirmed: [(sequence: UInt64, publish: Publish)] = []
    private var nextSequence: UInt64 = 1
    private var epochs: [UInt16: UInt64] = [:]
    private var nextEpoch: UInt64 = 1
    let reconnectBackoff: Backoff

    init(reconnectBackoff: Backoff) {
        self.reconnectBackoff = reconnectBackoff
    }

    var isConnected: Bool { phase == .connected }

    // MARK: Connecting

    /// A connection is being opened: sequence numbers start again at 1 on its publish
    /// channel, and no channel of it is open yet.
    mutating func opening() {
        nextSequence = 1
        epochs = [:]
    }

    /// The connection is up, its topology declared and its consumers resumed.
    mutating func connected() {
        phase = .connected
    }

    /// The connection dropped at `now`: what becomes of its unconfirmed publishes (those
    /// `mayResend` allows go out again when recovery is on), and when to try again.
    mutating func lost(at now: ContinuousClock.Instant, recovers: Bool, random: Double, mayResend: (Publish) -> Bool) -> Orphans {
        let orphans = unconfirmed.map(\.publish)
        unconfirmed.removeAll()
        epochs.removeAll()
        guard recovers else {
            phase = .closed
            return Orphans(resend: [], fail: orphans)
        }
        phase = .reconnecting(at: now + reconnectBackoff.delay(afterFailures: 1, random: random), failures: 1)
        return Orphans(resend: orphans.filter(mayResend), fail: orphans.filter { !mayResend($0) })
    }

    /// An attempt to reconnect failed at `now`: the next one waits longer.
    mutating func reconnectFailed(at now: ContinuousClock.Instant, random: Double) {
        guard case .reconnecting(_, let failures) = phase else { return }
        phase = .reconnecting(at: now + reconnectBackoff.delay(afterFailures: failures + 1, random: random), failures: failures + 1)
    }

    /// Whether an attempt to reconnect is due at `now`.
    func reconnectDue(at now: ContinuousClock.Instant) -> Bool {
        if case .reconnecting(let at, _) = phase { return now >= at }
        return false
    }

    /// How long until the next attempt, when one is scheduled.
    func untilReconnect(from now: ContinuousClock.Instant) -> Duration? {
        if case .reconnecting(let at, _) = phase { return max(.zero, at - now) }
        return nil
    }

    mutating func closed() -> [Publish] {
        phase = .closed
        defer { unconfirmed.removeAll() }
        return unconfirmed.map(\.publish)
    }

    // MARK: Confirms

    /// A publish was written on the publish channel: it waits for the confirm of its sequence number.
    mutating func published(_ publish: Publish) {
        unconfirmed.append((nextSequence, publish))
        nextSequence += 1
    }

    /// `basic.ack` or `basic.nack` for `tag` (and all before it when `multiple`): the
    /// publishes it settles, in order. A tag that matches nothing settles nothing.
    mutating func confirmed(upTo tag: UInt64, multiple: Bool) -> [Publish] {
        if multiple {
            let count = unconfirmed.prefix { $0.sequence <= tag }.count
            defer { unconfirmed.removeFirst(count) }
            return unconfirmed.prefix(count).map(\.publish)
        }
        guard let index = unconfirmed.firstIndex(where: { $0.sequence == tag }) else { return [] }
        return [unconfirmed.remove(at: index).publish]
    }

    /// The broker closed the publish channel and it was opened again: the publishes the
    /// closing error was about fail; the others were bystanders, whose confirms will never
    /// come, and go out again on the new channel.
    mutating func publishChannelReopened(failing isCulprit: (Publish) -> Bool) -> Orphans {
        nextSequence = 1
        let orphans = unconfirmed.map(\.publish)
        unconfirmed.removeAll()
        return Orphans(resend: orphans.filter { !isCulprit($0) }, fail: orphans.filter(isCulprit))
    }

    // MARK: Channels

    /// A consumer's channel was opened: deliveries on it carry this epoch.
    mutating func channelOpened(_ channel: UInt16) -> UInt64 {
        defer { nextEpoch += 1 }
        epochs[channel] = nextEpoch
        return nextEpoch
    }

    mutating func channelClosed(_ channel: UInt16) {
        epochs[channel] = nil
    }

    /// The epoch of a channel now open, or nil.
    func epoch(of channel: UInt16) -> UInt64? {
        epochs[channel]
    }
}
