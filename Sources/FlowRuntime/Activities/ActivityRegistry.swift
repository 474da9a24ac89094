import FlowCore
import Foundation

/// The activities a worker runs, by name, with their inputs decoded and outputs encoded.
public struct ActivityRegistry: Sendable {
    /// One registered activity, its types erased.
    struct Entry: Sendable {
        let name: String
        let queue: WorkQueue
        let retryPolicy: RetryPolicy
        let startToCloseTimeout: Duration
        let run: @Sendable (_ input: [UInt8], _ context: ActivityContext) async throws -> JSONText
    }

    private(set) var entries: [String: Entry] = [:]

    public init() {}

    /// Adds an activity. Registering two activities of one name is a programming error.
    public mutating func register<A: Activity>(_ activity: A) {
        precondition(entries[A.name] == nil, "activity \(A.name) is registered twice")
        entries[A.name] = Entry(
            name: A.name,
            queue: A.queue,
            retryPolicy: A.retryPolicy,
            startToCloseTimeout: A.startToCloseTimeout
        ) { body, context in
            let input: A.Input
            do {
                input = try JSONDecoder().decode(A.Input.self, from: Data(body))
            } catch let error as DecodingError {
                // Only on failure: tell bytes that are not JSON at all from JSON of the wrong shape.
                guard (try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) != nil else {
                    let preview = String(decoding: body.prefix(80), as: UTF8.self)
                    throw ActivityFailure.nonRetryable(.malformedJSON, "the body is not JSON (it starts with \"\(preview)\"): send the activity's input as a JSON object")
                }
                throw ActivityFailure.nonRetryable(.invalidInput, "the input of \(A.name) does not decode: \(DecodingErrorDescription(error))")
            }
            let output = try await activity.run(input, context: context)
            return try JSONText(encoding: output)
        }
    }

    /// The names of the registered activities, sorted.
    public var names: [String] { entries.keys.sorted() }

    func entry(named name: String) -> Entry? { entries[name] }
}

/// A decoding error in words: which field, and what was wrong with it.
struct DecodingErrorDescription: CustomStringConvertible {
    let error: DecodingError

    init(_ error: DecodingError) { self.error = error }

    var description: String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "the top level" : "'" + codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "field '\(key.stringValue)' is missing\(parent)"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) should be \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) is null but should be \(type)"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
