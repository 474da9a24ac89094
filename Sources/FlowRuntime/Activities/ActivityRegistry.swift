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
    /// The activities this registry must implement (an actor's contract), by name, with their queues.
    private let contract: [String: WorkQueue]?

    public init() {
        contract = nil
    }

    /// A registry for an actor whose contract lists `contract`: registering an activity it
    /// does not list is a programming error, and ``unimplemented`` names what is missing.
    public init(contract: [any ActivityDeclaration.Type]) {
        self.contract = Dictionary(uniqueKeysWithValues: contract.map { ($0.name, $0.queue) })
    }

    /// The activities of the contract not registered yet; a worker does not start while
    /// there are any.
    public var unimplemented: [String] {
        (contract?.keys.filter { entries[$0] == nil } ?? []).sorted()
    }

    /// Adds an activity. Registering two activities of one name, or one outside the
    /// registry's contract, is a programming error.
    public mutating func register<A: Activity>(_ activity: A) {
        precondition(entries[A.name] == nil, "activity \(A.name) is registered twice")
        precondition(contract == nil || contract?[A.name] == A.queue, "activity \(A.name) on \(A.queue.queueName) is not in this actor's contract")
        entries[A.name] = Entry(
            name: A.name,
            queue: A.queue,
            retryPolicy: A.retryPolicy,
            startToCloseTimeout: A.startToCloseTimeout
        ) { body, context in
            let input: A.Input
            do {
                input = try FlowJSON.decode(A.Input.self, from: body)
            } catch let error as DecodingError {
                // Only on failure: tell bytes that are not JSON at all from JSON of the wrong shape.
                guard (try? JSONValue(parsing: body)) != nil else {
                    let preview = String(decoding: body.prefix(80), as: UTF8.self)
                    throw ActivityFailure.nonRetryable(.malformedJSON, "the body is not JSON (it starts with \"\(preview)\"): send the activity's input as a JSON object")
                }
                throw ActivityFailure.nonRetryable(.invalidInput, "the input of \(A.name) does not decode: \(FlowJSON.describe(error))")
            }
            let output = try await activity.run(input, context: context)
            return try JSONText(encoding: output)
        }
    }

    /// The names of the registered activities, sorted.
    public var names: [String] { entries.keys.sorted() }

    func entry(named name: String) -> Entry? { entries[name] }
}

