import Foundation
import Tracing

/// A moment on the wall clock, for a span that starts or ends at a time measured elsewhere
/// (a checkpoint written on the trainer's own thread).
public struct WallTime: TracerInstant {
    public let nanosecondsSinceEpoch: UInt64

    public init(_ date: Date) {
        nanosecondsSinceEpoch = UInt64(max(date.timeIntervalSince1970, 0) * 1_000_000_000)
    }

    public static func < (lhs: WallTime, rhs: WallTime) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}
