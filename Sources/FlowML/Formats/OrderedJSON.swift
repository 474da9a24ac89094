/// A JSON parser for the files model folders ship (`tokenizer.json`, datasets, chat
/// messages) that keeps what Foundation's loses: the order of an object's keys (Python's
/// `json`, and so `tojson` and `items()`, show it), ints apart from floats, and keys
/// compared scalar by scalar (a `[String: Any]` merges canonically equivalent keys, and
/// vocabularies hold both `"é"` and `"e\u{301}"`). It reads UTF-8 bytes directly.
enum OrderedJSON {
    struct Error: Swift.Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ bytes: [UInt8]) throws(Error) -> TemplateValue {
        try bytes.withUnsafeBufferPointer { buffer throws(Error) in
            var parser = Parser(bytes: buffer)
            let value = try parser.value()
            parser.skipWhitespace()
            guard parser.position == buffer.count else { throw Error(description: "unexpected text after the JSON value at byte \(parser.position)") }
            return value
        }
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[position]) { position += 1 }
        }

        private func failure(_ what: String) -> Error { Error(description: "\(what) at byte \(position)") }

        mutating func value() throws(Error) -> TemplateValue {
            skipWhitespace()
            guard position < bytes.count else { throw failure("the JSON ends where a value should be") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var object = TemplateValue.OrderedObject()
                skipWhitespace()
                if try consume(UInt8(ascii: "}")) { return .object(object) }
                while true {
                    skipWhitespace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw failure("a JSON object key must be a string") }
                    let key = try string()
                    skipWhitespace()
                    guard try consume(UInt8(ascii: ":")) else { throw failure("expected ':'") }
                    object[key] = try value()
                    if try endOfContainer(UInt8(ascii: "}")) { return .object(object) }
                }
            case UInt8(ascii: "["):
                position += 1
                var values: [TemplateValue] = []
                skipWhitespace()
                if try consume(UInt8(ascii: "]")) { return .array(values) }
                while true {
                    values.append(try value())
                    if try endOfContainer(UInt8(ascii: "]")) { return .array(values) }
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try word("true"); return .bool(true)
            case UInt8(ascii: "f"): try word("false"); return .bool(false)
            case UInt8(ascii: "n"): try word("null"); return .none
            default:
                return try number()
            }
        }

        private mutating func consume(_ byte: UInt8) throws(Error) -> Bool {
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        /// After a member: `,` goes on, `closing` ends the container.
        private mutating func endOfContainer(_ closing: UInt8) throws(Error) -> Bool {
            skipWhitespace()
            if try consume(UInt8(ascii: ",")) { return false }
            if try consume(closing) { return true }
            throw failure("expected ',' or '\(Character(Unicode.Scalar(closing)))'")
        }

        private mutating func word(_ text: StaticString) throws(Error) {
            let count = text.utf8CodeUnitCount
            guard position + count <= bytes.count,
                  (0..<count).allSatisfy({ bytes[position + $0] == text.utf8Start[$0] })
            else { throw failure("not a JSON value") }
            position += count
        }

        private mutating func number() throws(Error) -> TemplateValue {
            let start = position
            var isInteger = true
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"): break
                case UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): isInteger = false
                default:
                    return try finishNumber(from: start, isInteger: isInteger)
                }
                position += 1
            }
            return try finishNumber(from: start, isInteger: isInteger)
        }

        private func finishNumber(from start: Int, isInteger: Bool) throws(Error) -> TemplateValue {
            let literal = String(decoding: bytes[start..<position], as: UTF8.self)
            if isInteger, let value = Int(literal) { return .int(value) }
            guard !literal.isEmpty, let value = Double(literal) else { throw Error(description: "not a JSON value at byte \(start)") }
            return .double(value)
        }

        /// A string, from its opening quote. Runs without escapes are decoded as they are.
        private mutating func string() throws(Error) -> String {
            position += 1
            var result = ""
            var runStart = position
            var pendingHigh: UInt32?
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    result += String(decoding: bytes[runStart..<position], as: UTF8.self)
                    position += 1
                    return result
                }
                guard byte == UInt8(ascii: "\\") else {
                    position += 1
                    continue
                }
                result += String(decoding: bytes[runStart..<position], as: UTF8.self)
                position += 1
                guard position < bytes.count else { break }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "n"): result += "\n"
                case UInt8(ascii: "t"): result += "\t"
                case UInt8(ascii: "r"): result += "\r"
                case UInt8(ascii: "b"): result += "\u{8}"
                case UInt8(ascii: "f"): result += "\u{C}"
                case UInt8(ascii: "u"):
                    guard position + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16) else {
                        throw failure("a bad \\u escape")
                    }
                    position += 4
                    if (0xD800..<0xDC00).contains(code) {
                        pendingHigh = code
                    } else if (0xDC00..<0xE000).contains(code), let high = pendingHigh {
                        result.unicodeScalars.append(Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00))!)
                        pendingHigh = nil
                    } else {
                        result.unicodeScalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                    }
                default:
                    result.unicodeScalars.append(Unicode.Scalar(escape))
                }
                runStart = position
            }
            throw failure("the JSON ends inside a string")
        }
    }
}
