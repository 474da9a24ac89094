import FlowCore
import Foundation

/// When a schedule runs: every fixed interval, or on a five-field cron expression
/// (minute, hour, day of month, month, day of week; evaluated in UTC).
public enum Recurrence: Sendable, Equatable {
    case every(seconds: Int64)
    case cron(CronExpression)

    public init(everySeconds: Int64?, cron: String?) throws {
        switch (everySeconds, cron) {
        case (let seconds?, nil):
            guard seconds >= 1 else { throw ActivityFailure.nonRetryable(.invalidSchedule, "every_seconds must be at least 1, got \(seconds)") }
            self = .every(seconds: seconds)
        case (nil, let expression?):
            self = .cron(try CronExpression(expression))
        default:
            throw ActivityFailure.nonRetryable(.invalidSchedule, "give exactly one of every_seconds and cron")
        }
    }

    /// The first run time strictly after `date`.
    public func next(after date: Date) -> Date {
        switch self {
        case .every(let seconds):
            // Aligned to the interval, so restarts do not shift the times.
            let now = date.timeIntervalSince1970
            let interval = Double(seconds)
            return Date(timeIntervalSince1970: (floor(now / interval) + 1) * interval)
        case .cron(let expression):
            return expression.next(after: date)
        }
    }
}

/// A cron expression of five fields: `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`,
/// and lists of those. Day of week runs 0-6 from Sunday (7 is Sunday too). When both day
/// fields are restricted, a day matching either runs, as in Vixie cron.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    public let description: String
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public init(_ text: String) throws {
        let fields = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 5 else {
            throw ActivityFailure.nonRetryable(.invalidSchedule, "a cron expression has five fields (minute hour day-of-month month day-of-week), '\(text)' has \(fields.count)")
        }
        description = fields.joined(separator: " ")
        minutes = try Self.parse(fields[0], name: "minute", range: 0...59)
        hours = try Self.parse(fields[1], name: "hour", range: 0...23)
        daysOfMonth = try Self.parse(fields[2], name: "day of month", range: 1...31)
        months = try Self.parse(fields[3], name: "month", range: 1...12)
        daysOfWeek = Set(try Self.parse(fields[4], name: "day of week", range: 0...7).map { $0 % 7 })
        dayOfMonthRestricted = fields[2] != "*"
        dayOfWeekRestricted = fields[4] != "*"
    }

    private static func parse(_ field: String, name: String, range: ClosedRange<Int>) throws -> Set<Int> {
        var values = Set<Int>()
        for part in field.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(pieces.count) else { throw invalid(field, name) }
            let step = pieces.count == 2 ? Int(pieces[1]) : 1
            guard let step, step >= 1 else { throw invalid(field, name) }
            let bounds: ClosedRange<Int>
            if pieces[0] == "*" {
                bounds = range
            } else {
                let ends = pieces[0].split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                guard let first = ends.first ?? nil, ends.allSatisfy({ $0 != nil }), ends.count <= 2 else { throw invalid(field, name) }
                let last = ends.count == 2 ? ends[1]! : (pieces.count == 2 ? range.upperBound : first)
                guard range.contains(first), range.contains(last), first <= last else { throw invalid(field, name) }
                bounds = first...last
            }
            values.formUnion(stride(from: bounds.lowerBound, through: bounds.upperBound, by: step))
        }
        return values
    }

    private static func invalid(_ field: String, _ name: String) -> ActivityFailure {
        .nonRetryable(.invalidSchedule, "'\(field)' is not a valid \(name) field: use *, a number, a-b, */n, a-b/n or a list of those")
    }

    /// The first minute strictly after `date` that matches.
    public func next(after date: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var candidate = calendar.date(bySetting: .second, value: 0, of: date.addingTimeInterval(60)) ?? date
        if candidate <= date { candidate = candidate.addingTimeInterval(60) }
        candidate = Date(timeIntervalSince1970: (candidate.timeIntervalSince1970 / 60).rounded(.down) * 60)
        // Five years of minutes bounds the search; an expression like "0 0 30 2 *" never matches.
        for _ in 0..<(5 * 366 * 24 * 60) {
            let parts = calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: candidate)
            guard months.contains(parts.month!) else {
                candidate = calendar.date(byAdding: .month, value: 1, to: calendar.date(from: calendar.dateComponents([.year, .month], from: candidate))!)!
                continue
            }
            let dayMatches: Bool
            let dayOfMonth = daysOfMonth.contains(parts.day!)
            let dayOfWeek = daysOfWeek.contains(parts.weekday! - 1)
            if dayOfMonthRestricted, dayOfWeekRestricted {
                dayMatches = dayOfMonth || dayOfWeek
            } else {
                dayMatches = dayOfMonth && dayOfWeek
            }
            guard dayMatches else {
                candidate = calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: candidate))!
                continue
            }
            guard hours.contains(parts.hour!) else {
                candidate = calendar.date(byAdding: .hour, value: 1, to: calendar.date(from: calendar.dateComponents([.year, .month, .day, .hour], from: candidate))!)!
                continue
            }
            if minutes.contains(parts.minute!) { return candidate }
            candidate = candidate.addingTimeInterval(60)
        }
        return .distantFuture
    }
}
