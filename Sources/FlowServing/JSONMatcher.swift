/// Reads JSON one byte at a time and says whether each byte keeps it a prefix of a value of
/// a ``JSONShape``: the pushdown automaton constrained decoding runs every candidate token
/// through. Compact JSON only (no whitespace between tokens), object keys in the shape's
/// order. A value, copied to try a token; tested without a model.
public struct JSONMatcher: Sendable {
    private enum Frame: Sendable {
        /// A value of this shape comes next.
        case value(JSONShape)
        case object(ObjectFrame)
        case array(shape: JSONShape, count: Int, minimum: Int, maximum: Int, afterItem: Bool)
        case string(StringFrame)
        case oneOf(typed: [UInt8], values: [[UInt8]])
        case number(NumberFrame)
        case literal(bytes: [UInt8], next: Int)
    }

    private struct ObjectFrame: Sendable {
        enum Phase: Sendable { case start, keyOpen, key, colon, value, afterValue }
        var properties: [JSONShape.Property]
        var open: Bool
        var depth: Int
        var phase = Phase.start
        /// The first property not written yet.
        var next = 0
        var typed: [UInt8] = []
        var keys = 0

        /// The properties the key being written may be: from the next one to the first
        /// required one, keys being written in order.
        var candidates: ArraySlice<JSONShape.Property> {
            let rest = properties[next...]
            guard let required = rest.firstIndex(where: \.required) else { return rest }
            return properties[next...required]
        }

        var requiredLeft: Bool { properties[next...].contains(where: \.required) }
    }

    private struct StringFrame: Sendable {
        var maximumLength: Int
        var length = 0
        /// 0 outside an escape; 1 after `\`; 2…5 inside `\uXXXX` (hex digits left + 1).
        var escape = 0
        /// UTF-8 continuation bytes still due for the character begun.
        var continuation = 0
    }

    private struct NumberFrame: Sendable {
        enum Phase: Sendable { case start, minus, zero, integer, point, fraction, exponent, exponentSign, exponentDigits }
        var integer: Bool
        var phase = Phase.start
        var digits = 0

        var isWhole: Bool { phase == .zero || phase == .integer || phase == .fraction || phase == .exponentDigits }

        /// Takes `byte` if the number goes on with it (JSON's number grammar; an integer has
        /// no fraction or exponent; at most 18 digits).
        mutating func advance(_ byte: UInt8) -> Bool {
            let digit = byte >= 0x30 && byte <= 0x39
            if digit {
                guard digits < 18 else { return false }
                switch phase {
                case .start, .minus: phase = byte == UInt8(ascii: "0") ? .zero : .integer
                case .integer: break
                case .point, .fraction: phase = .fraction
                case .exponent, .exponentSign, .exponentDigits: phase = .exponentDigits
                case .zero: return false
                }
                digits += 1
                return true
            }
            switch (phase, byte) {
            case (.start, UInt8(ascii: "-")): phase = .minus
            case (.zero, UInt8(ascii: ".")), (.integer, UInt8(ascii: ".")): guard !integer else { return false }; phase = .point
            case (.zero, UInt8(ascii: "e")), (.zero, UInt8(ascii: "E")), (.integer, UInt8(ascii: "e")), (.integer, UInt8(ascii: "E")), (.fraction, UInt8(ascii: "e")), (.fraction, UInt8(ascii: "E")):
                guard !integer else { return false }
                phase = .exponent
            case (.exponent, UInt8(ascii: "+")), (.exponent, UInt8(ascii: "-")): phase = .exponentSign
            default: return false
            }
            return true
        }
    }

    private var stack: [Frame]
    public private(set) var isComplete = false

    public init(_ shape: JSONShape) {
        stack = [.value(shape)]
    }

    /// Takes `byte` if the JSON stays a prefix of a value of the shape; otherwise changes
    /// nothing and returns false.
    public mutating func feed(_ byte: UInt8) -> Bool {
        var next = self
        guard next.take(byte) else { return false }
        self = next
        return true
    }

    /// Takes `bytes` in turn, all or none.
    public mutating func feed(_ bytes: [UInt8]) -> Bool {
        var next = self
        for byte in bytes where !next.take(byte) { return false }
        self = next
        return true
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard !isComplete, let top = stack.popLast() else { return false }
        switch top {
        case .value(let shape):
            return start(shape, with: byte)
        case .object(var object):
            return takeInObject(&object, byte)
        case .array(let shape, let count, let minimum, let maximum, let afterItem):
            if !afterItem {
                if byte == UInt8(ascii: "]"), count >= minimum { return valueDone() }
                guard count < maximum else { return false }
                stack.append(.array(shape: shape, count: count, minimum: minimum, maximum: maximum, afterItem: true))
                return start(shape, with: byte)
            }
            if byte == UInt8(ascii: "]"), count + 1 >= minimum { return valueDone() }
            guard byte == UInt8(ascii: ","), count + 1 < maximum else { return false }
            stack.append(.array(shape: shape, count: count + 1, minimum: minimum, maximum: maximum, afterItem: false))
            return true
        case .string(var string):
            return takeInString(&string, byte)
        case .oneOf(let typed, let values):
            if byte == UInt8(ascii: "\"") { return values.contains(typed) ? valueDone() : false }
            let longer = typed + [byte]
            guard values.contains(where: { $0.starts(with: longer) }) else { return false }
            stack.append(.oneOf(typed: longer, values: values))
            return true
        case .number(var number):
            if number.advance(byte) {
                stack.append(.number(number))
                return true
            }
            // A byte that no number takes ends a whole one: the container takes it.
            guard number.isWhole, valueDone() else { return false }
            return take(byte)
        case .literal(let bytes, let next):
            guard bytes[next] == byte else { return false }
            if next + 1 == bytes.count { return valueDone() }
            stack.append(.literal(bytes: bytes, next: next + 1))
            return true
        }
    }

    /// The first byte of a value of `shape`.
    private mutating func start(_ shape: JSONShape, with byte: UInt8) -> Bool {
        switch (shape, byte) {
        case (.object(let properties, let open), UInt8(ascii: "{")):
            // An open object (`json_object`) holds values two levels deep at most.
            stack.append(.object(ObjectFrame(properties: properties, open: open, depth: open ? 2 : 0)))
        case (.array(let items, let minimum, let maximum), UInt8(ascii: "[")):
            stack.append(.array(shape: items, count: 0, minimum: minimum, maximum: maximum, afterItem: false))
        case (.string(let maximumLength), UInt8(ascii: "\"")):
            stack.append(.string(StringFrame(maximumLength: maximumLength)))
        case (.oneOf(let values), UInt8(ascii: "\"")):
            stack.append(.oneOf(typed: [], values: values.map { Array($0.utf8) }))
        case (.number(let integer), _):
            var number = NumberFrame(integer: integer)
            guard number.advance(byte) else { return false }
            stack.append(.number(number))
        case (.boolean, UInt8(ascii: "t")):
            stack.append(.literal(bytes: Array("true".utf8), next: 1))
        case (.boolean, UInt8(ascii: "f")):
            stack.append(.literal(bytes: Array("false".utf8), next: 1))
        case (.null, UInt8(ascii: "n")):
            stack.append(.literal(bytes: Array("null".utf8), next: 1))
        case (.any(let depth), _):
            let nested = depth > 0
            switch byte {
            case UInt8(ascii: "{") where nested: stack.append(.object(ObjectFrame(properties: [], open: true, depth: depth)))
            case UInt8(ascii: "[") where nested: stack.append(.array(shape: .any(depth: depth - 1), count: 0, minimum: 0, maximum: JSONShape.defaultMaximumItems, afterItem: false))
            case UInt8(ascii: "\""): stack.append(.string(StringFrame(maximumLength: JSONShape.defaultMaximumLength)))
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                return start(byte == UInt8(ascii: "n") ? .null : .boolean, with: byte)
            default: return start(.number(integer: false), with: byte)
            }
        default:
            return false
        }
        return true
    }

    private mutating func takeInObject(_ object: inout ObjectFrame, _ byte: UInt8) -> Bool {
        switch object.phase {
        case .start, .keyOpen:
            if object.phase == .start, byte == UInt8(ascii: "}") { return object.requiredLeft ? false : valueDone() }
            guard byte == UInt8(ascii: "\""), object.open ? object.keys < 16 : !object.candidates.isEmpty else { return false }
            object.phase = .key
            object.typed = []
        case .key:
            if byte == UInt8(ascii: "\"") {
                if object.open {
                    guard !object.typed.isEmpty else { return false }
                } else {
                    guard let index = object.candidates.firstIndex(where: { Array($0.name.utf8) == object.typed }) else { return false }
                    object.next = index
                }
                object.phase = .colon
            } else {
                let longer = object.typed + [byte]
                if object.open {
                    let allowed = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "_")
                    guard allowed, longer.count <= 40 else { return false }
                } else {
                    guard object.candidates.contains(where: { Array($0.name.utf8).starts(with: longer) }) else { return false }
                }
                object.typed = longer
            }
        case .colon:
            guard byte == UInt8(ascii: ":") else { return false }
            object.phase = .value
            let shape = object.open ? JSONShape.any(depth: object.depth - 1) : object.properties[object.next].shape
            stack.append(.object(object))
            stack.append(.value(shape))
            return true
        case .value:
            return false
        case .afterValue:
            if byte == UInt8(ascii: "}") { return object.requiredLeft ? false : valueDone() }
            guard byte == UInt8(ascii: ","), object.open || object.next < object.properties.count else { return false }
            object.phase = .keyOpen
        }
        stack.append(.object(object))
        return true
    }

    private mutating func takeInString(_ string: inout StringFrame, _ byte: UInt8) -> Bool {
        switch string.escape {
        case 1:
            if byte == UInt8(ascii: "u") {
                string.escape = 5
            } else {
                guard Array(#""\/bfnrt"#.utf8).contains(byte) else { return false }
                string.escape = 0
            }
        case 2...5:
            guard (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46) else { return false }
            string.escape = string.escape == 2 ? 0 : string.escape - 1
        default:
            if string.continuation > 0 {
                guard byte & 0xC0 == 0x80 else { return false }
                string.continuation -= 1
            } else if byte == UInt8(ascii: "\"") {
                return valueDone()
            } else {
                guard string.length < string.maximumLength, byte >= 0x20, byte != 0x7F else { return false }
                switch byte {
                case UInt8(ascii: "\\"): string.escape = 1
                case 0x80..<0xC2, 0xF5...0xFF: return false
                case 0xC2..<0xE0: string.continuation = 1
                case 0xE0..<0xF0: string.continuation = 2
                case 0xF0..<0xF5: string.continuation = 3
                default: break
                }
                string.length += 1
            }
        }
        stack.append(.string(string))
        return true
    }

    /// The value on top ended: its container goes on after it, or the JSON is whole.
    private mutating func valueDone() -> Bool {
        guard let container = stack.popLast() else {
            isComplete = true
            return true
        }
        switch container {
        case .object(var object):
            object.phase = .afterValue
            if !object.open { object.next += 1 } else { object.keys += 1 }
            stack.append(.object(object))
        case .array(let shape, let count, let minimum, let maximum, _):
            stack.append(.array(shape: shape, count: count, minimum: minimum, maximum: maximum, afterItem: true))
        default:
            stack.append(container)
        }
        return true
    }

    // MARK: Closing

    /// The next byte of the shortest way to make the JSON whole: what the decoder writes
    /// when the token budget runs short. Nil once it is whole.
    func closingByte() -> UInt8? {
        guard !isComplete, let top = stack.last else { return nil }
        switch top {
        case .value(let shape):
            return Self.firstByte(of: shape)
        case .object(let object):
            switch object.phase {
            case .start: return object.requiredLeft ? UInt8(ascii: "\"") : UInt8(ascii: "}")
            case .keyOpen: return UInt8(ascii: "\"")
            case .key:
                if object.open { return object.typed.isEmpty ? UInt8(ascii: "k") : UInt8(ascii: "\"") }
                let matching = object.candidates.filter { Array($0.name.utf8).starts(with: object.typed) }
                let name = Array((matching.first(where: \.required) ?? matching.min { $0.name.utf8.count < $1.name.utf8.count })!.name.utf8)
                return name.count > object.typed.count ? name[object.typed.count] : UInt8(ascii: "\"")
            case .colon: return UInt8(ascii: ":")
            case .value: return nil
            case .afterValue: return object.requiredLeft ? UInt8(ascii: ",") : UInt8(ascii: "}")
            }
        case .array(let shape, let count, let minimum, _, let afterItem):
            if afterItem { return count + 1 < minimum ? UInt8(ascii: ",") : UInt8(ascii: "]") }
            return count < minimum ? Self.firstByte(of: shape) : UInt8(ascii: "]")
        case .string(let string):
            if string.escape == 1 { return UInt8(ascii: "n") }
            if string.escape > 1 { return UInt8(ascii: "0") }
            if string.continuation > 0 { return 0x80 }
            return UInt8(ascii: "\"")
        case .oneOf(let typed, let values):
            let shortest = values.filter { $0.starts(with: typed) }.min { $0.count < $1.count }!
            return shortest.count > typed.count ? shortest[typed.count] : UInt8(ascii: "\"")
        case .number(let number):
            if number.isWhole {
                var ended = self
                _ = ended.stack.popLast()
                _ = ended.valueDone()
                return ended.closingByte()
            }
            return UInt8(ascii: "0")
        case .literal(let bytes, let next):
            return bytes[next]
        }
    }

    /// The shortest way to make the JSON whole (``closingByte()`` in turn), at most `limit` bytes.
    public func closingBytes(limit: Int = 4096) -> [UInt8] {
        var copy = self
        var bytes: [UInt8] = []
        while let byte = copy.closingByte(), bytes.count < limit, copy.feed(byte) { bytes.append(byte) }
        return bytes
    }

    private static func firstByte(of shape: JSONShape) -> UInt8 {
        switch shape {
        case .object: UInt8(ascii: "{")
        case .array: UInt8(ascii: "[")
        case .string, .oneOf: UInt8(ascii: "\"")
        case .number, .any: UInt8(ascii: "0")
        case .boolean: UInt8(ascii: "f")
        case .null: UInt8(ascii: "n")
        }
    }
}
