import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("tokenizer.json, against Hugging Face tokenizers")
struct TokenizerTests {
    struct Case: Decodable {
        var text: String
        var ids: [Int]
        var decoded: String
    }

    @Test("encodings equal Hugging Face's token for token, and decode back", arguments: ["byte-level", "metaspace"])
    func matchesReference(style: String) throws {
        let fixtures = Repository.file("Tests/FlowMLTests/Fixtures")
        let tokenizer = try Tokenizer(contentsOf: fixtures.appendingPathComponent("\(style).tokenizer.json"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: fixtures.appendingPathComponent("\(style).expected.json")))
        #expect(cases.count == 7)
        for sample in cases {
            #expect(tokenizer.encode(sample.text) == sample.ids, "\(style): \(sample.text.debugDescription)")
            #expect(tokenizer.decode(sample.ids) == sample.decoded, "\(style): \(sample.text.debugDescription)")
        }
    }
}
