@testable import FlowML
import Testing

@Suite("JSON read as the files model folders ship it")
struct OrderedJSONTests {
    @Test("keys keep their order and their exact scalars, ints stay apart from floats, escapes and surrogate pairs decode")
    func values() throws {
        let value = try OrderedJSON.parse(Array(#"{"z": 1, "é": 2, "e\u0301": 3, "a": 1.5, "s": "tab\tquote\" \ud83c\udf89 \u00e9", "n": null, "l": [true, false, -2e3]}"#.utf8))
        let object = try #require(value.objectValue)
        #expect(object.keys == ["z", "é", "e\u{301}", "a", "s", "n", "l"])
        #expect(object["é"]?.intValue == 2 && object["e\u{301}"]?.intValue == 3, "canonically equivalent keys are two keys")
        guard case .int(1)? = object["z"], case .double(1.5)? = object["a"] else {
            Issue.record("1 must read as an int and 1.5 as a float")
            return
        }
        #expect(object["s"]?.stringValue == "tab\tquote\" 🎉 é")
        #expect(object["n"]?.isNone == true)
        #expect(try TemplateValue.object(object).json(indent: nil) == #"{"z": 1, "é": 2, "e\#u{301}": 3, "a": 1.5, "s": "tab\tquote\" 🎉 é", "n": null, "l": [true, false, -2000.0]}"#)
    }

    @Test("malformed JSON is refused with where it went wrong", arguments: ["", "{", #"{"a" 1}"#, "[1,]", #""open"#, "tru", "{} extra", #"{1: 2}"#])
    func malformed(text: String) {
        #expect { try OrderedJSON.parse(Array(text.utf8)) } throws: { "\($0)".contains("byte") }
    }
}
