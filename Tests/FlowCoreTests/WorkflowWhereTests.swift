import FlowCore
import Testing

/// The filter language of `flow workflow list --where`, read without a store.
@Suite("workflow filters in words")
struct WorkflowWhereTests {
    @Test("clauses joined by AND, with quoted, bare, numeric and truth values")
    func reads() throws {
        let filter = try WorkflowWhere.parse(#"status = parked AND document_format = "pdf" and pages>=10 AND urgent = true AND owner != 'ada lovelace' AND started_at < 2026-12-01T00:00:00Z"#)
        #expect(filter.clauses == [
            .init(key: "status", comparison: .equal, value: .text("parked")),
            .init(key: "document_format", comparison: .equal, value: .text("pdf")),
            .init(key: "pages", comparison: .greaterOrEqual, value: .number(10)),
            .init(key: "urgent", comparison: .equal, value: .bool(true)),
            .init(key: "owner", comparison: .notEqual, value: .text("ada lovelace")),
            .init(key: "started_at", comparison: .less, value: .text("2026-12-01T00:00:00Z")),
        ])
        #expect(try WorkflowWhere.parse("score < -2.5").clauses == [.init(key: "score", comparison: .less, value: .number(-2.5))])
        #expect(filter.description.hasPrefix(#"status = "parked" AND document_format = "pdf" AND pages >= 10 AND urgent = true"#))
    }

    @Test("what it cannot read is refused, saying where and what it expected", arguments: [
        ("", "character 1: expected a key"),
        ("pages", "character 6: expected one of = != < <= > >= after 'pages'"),
        ("pages >=", "character 9: expected a value"),
        (#"name = "open"#, "expected the closing \""),
        ("a = 1 OR b = 2", "character 7: expected AND or the end"),
        ("a = 1 AND", "character 10: expected a key"),
    ])
    func refuses(_ text: String, _ expected: String) {
        #expect {
            try WorkflowWhere.parse(text)
        } throws: { error in
            guard let failure = error as? ActivityFailure else { return false }
            return failure.kind == .invalidInput && failure.message.contains(expected)
        }
    }

    @Test("search attributes a workflow files are checked: keys, names lists own, text length")
    func validation() throws {
        try SearchAttribute.validate(["document_format": .text("pdf"), "pages": .number(3), "urgent": .bool(false), "gone": nil])
        for bad in ["Status", "status", "1abc", "has space", String(repeating: "a", count: 65)] {
            #expect(throws: ActivityFailure.self, "\(bad)") { try SearchAttribute.validate([bad: .text("x")]) }
        }
        #expect(throws: ActivityFailure.self) { try SearchAttribute.validate(["note": .text(String(repeating: "x", count: 257))]) }
    }
}
