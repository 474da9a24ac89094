@testable import FlowML
import FlowTesting
import Foundation
import Testing

/// The Jinja renderer against Jinja itself, configured as Transformers configures it
/// (`Fixtures/make_template_fixtures.py`): scoping, loops, whitespace control, filters,
/// tests, operators, string methods, printing values and errors.
@Suite("chat templates' Jinja, against Jinja")
struct ChatTemplateTests {
    struct Case: Decodable {
        var name: String
        var template: String
        var output: String?
        var error: String?
    }

    struct Expected: Decodable {
        var cases: [Case]
    }

    @Test("each template renders as Jinja renders it, or fails with Jinja's reason")
    func matchesJinja() throws {
        let url = Repository.file("Tests/FlowMLTests/Fixtures/templates/expected.json")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
        guard case .object(let root) = try TemplateValue.parseJSON(String(decoding: try Data(contentsOf: url), as: UTF8.self)), let messages = root["messages"] else {
            Issue.record("the fixture has no messages")
            return
        }
        #expect(expected.cases.count >= 20)
        for sample in expected.cases {
            let template = try ChatTemplate(sample.template)
            let conversation = try ChatConversation(messages: messages, tools: nil)
            do {
                let output = try template.render(conversation, addGenerationPrompt: true, specialTokens: ["bos_token": "<s>"])
                if let wanted = sample.output {
                    #expect(output.unicodeScalars.elementsEqual(wanted.unicodeScalars), "\(sample.name): \(output.debugDescription), Jinja: \(wanted.debugDescription)")
                } else {
                    Issue.record("\(sample.name): rendered \(output.debugDescription) where Jinja failed with \(sample.error ?? "")")
                }
            } catch let error as TemplateError {
                #expect(sample.error.map { error.message.contains($0) } == true, "\(sample.name): \(error.message), Jinja: \(sample.output ?? sample.error ?? "")")
            }
        }
    }
}
