import DequeModule
import FlowCore

/// A call's place in a ``FairQueue``, to take it out again.
struct FairQueueTicket: Hashable, Sendable {
    let id: UInt64
}

/// Calls waiting for one model's capacity, in the order they take it, as a value:
/// - every `high` call before any `normal` one, and `normal` before `low`;
/// - within a priority, rate keys take turns by weight (smooth weighted round-robin, as
///   nginx balances upstreams), so a key that floods cannot starve the others; a key with
///   weight 2 takes two turns for another's one;
/// - each key's calls in the order they came.
///
/// A key whose own limit is used up is skipped (`isReady`), without losing its place in
/// the round. A key that has no call waiting drops out and keeps no credit, so a quiet
/// tenant cannot bank turns for a later burst.
struct FairQueue<Element: Sendable>: Sendable {
    typealias Ticket = FairQueueTicket

    private struct Lane: Sendable {
        var waiting: Deque<(ticket: Ticket, element: Element)> = []
        var weight: Int
        var credit = 0
    }

    /// Lanes by priority, then by rate key.
    private var lanes: [ActivityPriority: [String: Lane]] = [:]
    private var nextID: UInt64 = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Puts a call at the back of its key's lane.
    mutating func enqueue(_ element: Element, key: String, weight: Int, priority: ActivityPriority) -> Ticket {
        nextID += 1
        let ticket = Ticket(id: nextID)
        lanes[priority, default: [:]][key, default: Lane(weight: max(1, weight))].waiting.append((ticket, element))
        count += 1
        return ticket
    }

    /// Takes a call out of the queue wherever it is (its caller gave up); nil when it is
    /// not waiting.
    mutating func remove(_ ticket: Ticket) -> Element? {
        for priority in ActivityPriority.allCases {
            guard let keys = lanes[priority] else { continue }
            for (key, lane) in keys {
                guard let index = lane.waiting.firstIndex(where: { $0.ticket == ticket }) else { continue }
                let element = lane.waiting[index].element
                lanes[priority]![key]!.waiting.remove(at: index)
                if lanes[priority]![key]!.waiting.isEmpty { lanes[priority]![key] = nil }
                count -= 1
                return element
            }
        }
        return nil
    }

    /// The call whose turn it is among the keys `isReady` accepts (given each key's first
    /// waiting call), without taking it; nil when no ready key has a call waiting.
    func peek(where isReady: (String, Element) -> Bool) -> (ticket: Ticket, element: Element)? {
        choose(where: isReady).map { ($0.ticket, $0.element) }
    }

    /// Takes the call ``peek(where:)`` chose and moves the round on.
    mutating func take(where isReady: (String, Element) -> Bool) -> (ticket: Ticket, element: Element)? {
        guard let choice = choose(where: isReady) else { return nil }
        var keys = lanes[choice.priority]!
        for key in choice.eligible { keys[key]!.credit += keys[key]!.weight }
        keys[choice.key]!.credit -= choice.totalWeight
        keys[choice.key]!.waiting.removeFirst()
        if keys[choice.key]!.waiting.isEmpty { keys[choice.key] = nil }
        lanes[choice.priority] = keys.isEmpty ? nil : keys
        count -= 1
        return (choice.ticket, choice.element)
    }

    private struct Choice {
        var priority: ActivityPriority
        var key: String
        var eligible: [String]
        var totalWeight: Int
        var ticket: Ticket
        var element: Element
    }

    private func choose(where isReady: (String, Element) -> Bool) -> Choice? {
        for priority in ActivityPriority.allCases {
            guard let keys = lanes[priority] else { continue }
            let eligible = keys.filter { key, lane in lane.waiting.first.map { isReady(key, $0.element) } ?? false }
            guard !eligible.isEmpty else { continue }
            let totalWeight = eligible.values.reduce(0) { $0 + $1.weight }
            // Ties go to the key that sorts first, so the order never depends on hashing.
            let chosen = eligible.max { left, right in
                let leftCredit = left.value.credit + left.value.weight
                let rightCredit = right.value.credit + right.value.weight
                return leftCredit != rightCredit ? leftCredit < rightCredit : left.key > right.key
            }!
            let head = chosen.value.waiting.first!
            return Choice(priority: priority, key: chosen.key, eligible: Array(eligible.keys), totalWeight: totalWeight, ticket: head.ticket, element: head.element)
        }
        return nil
    }
}
