import Foundation

/// A point in wall-clock time, as a `Clock` instant: what the coordinator records in its
/// store (and compares after a restart), so it must be a calendar time, not a monotonic one.
public struct WallInstant: InstantProtocol, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var date: Date

    public init(_ date: Date) {
        self.date = date
    }

    public func advanced(by duration: Duration) -> WallInstant {
        WallInstant(date.addingTimeInterval(duration.seconds))
    }

    public func duration(to other: WallInstant) -> Duration {
        .nanoseconds(Int64(((other.date.timeIntervalSince1970 - date.timeIntervalSince1970) * 1e9).rounded()))
    }

    public static func < (lhs: WallInstant, rhs: WallInstant) -> Bool { lhs.date < rhs.date }

    public var description: String { date.description }
}

/// A clock that tells wall-clock time and sleeps until a wall-clock instant. The coordinator
/// takes one, so tests drive its timers, timeouts and schedules with a manual clock, in
/// milliseconds. ``SystemWallClock`` is the real one.
public protocol WallClock: Clock where Instant == WallInstant {}

extension WallClock {
    /// Now, as a `Date`.
    public var date: Date { now.date }
}

/// The system's wall clock, sleeping on the continuous clock.
public struct SystemWallClock: WallClock {
    public init() {}

    public var now: WallInstant { WallInstant(Date()) }

    public var minimumResolution: Duration { .microseconds(1) }

    public func sleep(until deadline: WallInstant, tolerance: Duration?) async throws {
        let remaining = now.duration(to: deadline)
        if remaining > .zero { try await ContinuousClock().sleep(for: remaining, tolerance: tolerance) }
    }
}

extension Duration {
    /// The duration in seconds, as a `TimeInterval`.
    public var seconds: TimeInterval {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
