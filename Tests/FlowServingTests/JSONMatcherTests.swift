import FlowCore
import FlowServing
import FlowTesting
import Foundation
import Testing

/// The constrained decoder's automaton as a value: which bytes it takes, and that its
/// closing always makes JSON that parses and follows the shape.
@Suite("JSON that follows a schema, a byte at a time")
struct JSONMatcherTests {
    static let analysisShape = try! JSONShape.parse(responseFormat: JSONValue(contentsOf: Repository.analysisFormat))!

    func takes(_ shape: JSONShape, _ text: String) -> Bool {
        var matcher = JSONMatcher(shape)
        return matcher.feed(Array(text.utf8))
    }

    @Test("the document_analysis schema: keys in order, every required one, enums, escapes and UTF-8 in strings")
    func analysis() {
        let whole = #"{"summary":"Rose \"fast\" — 12%","themes":["a","b"],"risks":[{"description":"x","severity":"high"}],"decisions":[],"open_questions":["why\u00e9?"]}"#
        var matcher = JSONMatcher(Self.analysisShape)
        let tookWhole = matcher.feed(Array(whole.utf8))
        #expect(tookWhole && matcher.isComplete)
        #expect(!takes(Self.analysisShape, #"{"themes":"#), "keys come in the schema's order")
        #expect(!takes(Self.analysisShape, #"{"summary":"s"}"#), "required keys cannot be left out")
        #expect(!takes(Self.analysisShape, #"{"summary":"s","themes":[],"risks":[{"description":"x","severity":"huge""#), "an enum takes only its values")
        #expect(!takes(Self.analysisShape, #"{ "summary""#), "no whitespace between tokens")
        #expect(!takes(Self.analysisShape, "{\"summary\":\"a\u{1}"), "no control characters in a string")
        #expect(!takes(Self.analysisShape, #"{"summary":"\x"#), "only JSON's escapes")
        var cut = JSONMatcher(Self.analysisShape)
        let tookCut = cut.feed(Array(#"{"summary":""#.utf8) + [0xC3, 0x41])
        #expect(!tookCut, "a UTF-8 sequence cut short")
        var filled = JSONMatcher(Self.analysisShape)
        let tookBad = filled.feed(Array(#"{"summary":"ok"}x"#.utf8))
        #expect(!tookBad && !filled.isComplete, "a refused run changes nothing")
    }

    @Test("from any prefix it took, the closing makes whole JSON of the shape", arguments: [
        #"{"#, #"{"sum"#, #"{"summary":"half \u00"#, #"{"summary":"é"#, #"{"summary":"x","themes":["t1","#,
        #"{"summary":"x","themes":[],"risks":[{"description":"d","severity":"me"#, #"{"summary":"x","themes":[],"risks":[{"#,
    ])
    func closing(prefix: String) throws {
        var matcher = JSONMatcher(Self.analysisShape)
        let tookPrefix = matcher.feed(Array(prefix.utf8))
        #expect(tookPrefix, "the prefix itself is valid")
        let closing = matcher.closingBytes()
        let closed = matcher.feed(closing)
        #expect(closed && matcher.isComplete)
        let text = prefix + String(decoding: closing, as: UTF8.self)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
        #expect(Set(object.keys) == ["summary", "themes", "risks", "decisions", "open_questions"], "\(text)")
    }

    @Test("numbers as JSON writes them, integers without a fraction; a number ends at its container's next byte")
    func numbers() throws {
        let shape = try #require(try JSONShape.parse(responseFormat: JSONValue(parsing: #"{"type":"json_schema","json_schema":{"schema":{"type":"object","required":["n","i","b","z"],"properties":{"n":{"type":"number"},"i":{"type":"integer"},"b":{"type":"boolean"},"z":{"type":"null"}}}}}"#)))
        #expect(takes(shape, #"{"n":-0.5e+3,"i":42,"b":true,"z":null}"#))
        #expect(!takes(shape, #"{"n":01"#), "no leading zero")
        #expect(!takes(shape, #"{"n":1,"i":4.2"#), "an integer has no fraction")
        #expect(!takes(shape, #"{"n":-}"#), "a minus sign needs digits")
        var open = JSONMatcher(try #require(try JSONShape.parse(responseFormat: JSONValue(parsing: #"{"type":"json_object"}"#))))
        let tookOpen = open.feed(Array(#"{"any_key":[1,"two",null],"k":{"x":true}}"#.utf8))
        #expect(tookOpen && open.isComplete)
    }

    @Test("a schema with what the decoder cannot follow is refused, naming it")
    func refusals() throws {
        #expect { try JSONShape.parse(responseFormat: JSONValue(parsing: #"{"type":"json_schema","json_schema":{"schema":{"type":"object","properties":{"a":{"anyOf":[]}}}}}"#)) } throws: {
            "\($0)".contains("anyOf")
        }
        #expect { try JSONShape.parse(responseFormat: JSONValue(parsing: #"{"type":"json_schema","json_schema":{"schema":{"type":"array"}}}"#)) } throws: {
            "\($0)".contains("root must be an object")
        }
        #expect(try JSONShape.parse(responseFormat: JSONValue(parsing: #"{"type":"text"}"#)) == nil)
    }
}

extension Repository {
    /// `response_format` of the analysis prompts, as the OpenAI actor sends it.
    static var analysisFormat: URL {
        let schema = (try? String(contentsOf: file("Sources/FlowOpenAIActivities/Prompts/schemas/document_analysis.json"), encoding: .utf8)) ?? "{}"
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("analysis-format-\(UUID().uuidString.prefix(6)).json")
        try? #"{"type":"json_schema","json_schema":{"name":"document_analysis","strict":true,"schema":\#(schema)}}"#.write(to: url, atomically: true, encoding: .utf8)
        return url
    }
}
