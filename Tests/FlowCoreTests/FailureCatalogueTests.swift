import FlowCore
import FlowTesting
import Foundation
import Testing

@Suite("the failure catalogue")
struct FailureCatalogueTests {
    /// The raw values the catalogue declares, read from its source.
    static func declaredKinds() throws -> [String] {
        let source = try String(contentsOf: Repository.file("Sources/FlowCore/Activities/ActivityFailure+Kind.swift"), encoding: .utf8)
        let expression = try NSRegularExpression(pattern: #"public static let \w+ = Kind\(rawValue: "(\w+)"\)"#)
        return expression.matches(in: source, range: NSRange(source.startIndex..., in: source)).map { (source as NSString).substring(with: $0.range(at: 1)) }
    }

    @Test("every kind has its own name, and docs/workers.md lists each one")
    func documented() throws {
        let kinds = try Self.declaredKinds()
        #expect(kinds.count > 50)
        #expect(Set(kinds).count == kinds.count, "two kinds share a name")
        let table = try String(contentsOf: Repository.file("docs/workers.md"), encoding: .utf8)
        for kind in kinds {
            #expect(table.contains("| `\(kind)` |"), "docs/workers.md does not list \(kind)")
        }
    }

    @Test("a failure's kind is its wire type, and cancellation is the catalogue's")
    func wireType() throws {
        let failure = ActivityFailure.nonRetryable(.invalidInput, "bad")
        #expect(failure.type == "InvalidInput" && failure.kind == .invalidInput && !failure.retryable)
        let decoded = try FlowJSON.decoder.decode(ActivityFailure.self, from: FlowJSON.encode(ActivityFailure.retryable(.init(rawValue: "QuotaExceeded"), "later")))
        #expect(decoded.kind.rawValue == "QuotaExceeded" && decoded.retryable)
        #expect(ActivityFailure.cancelled("stop").isCancellation)
        #expect(!ActivityFailure.nonRetryable(.unknown, "x").isCancellation)
    }
}
