import FlowCore

/// An activity a worker can run: a declaration plus the code.
///
/// ```swift
/// struct ParseDocument: Activity {
///     static let name = "parse_document"
///     static let queue = WorkQueue.default
///     func run(_ input: Input, context: ActivityContext) async throws -> Output { ... }
/// }
/// ```
///
/// `run` may be called more than once for the same request (a retry, a redelivery after a
/// crash): make its side effects idempotent, or key them on ``ActivityContext/messageID``.
public protocol Activity: ActivityDeclaration {
    func run(_ input: Input, context: ActivityContext) async throws -> Output
}
