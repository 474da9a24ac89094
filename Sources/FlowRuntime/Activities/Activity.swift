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

/// An activity that implements a declaration kept apart from it (in `FlowCore`, so the
/// coordinator and the command line can call it without linking its code). The name,
/// queue, input and output types, retry policy and timeout all come from `Declaration`,
/// so the worker and its callers cannot drift apart.
///
/// ```swift
/// struct EvaluateModelActivity: DeclaredActivity {
///     typealias Declaration = EvaluateModel
///     func run(_ input: Input, context: ActivityContext) async throws -> Output { ... }
/// }
/// ```
public protocol DeclaredActivity: Activity where Input == Declaration.Input, Output == Declaration.Output {
    associatedtype Declaration: ActivityDeclaration
}

extension DeclaredActivity {
    public static var name: String { Declaration.name }
    public static var queue: WorkQueue { Declaration.queue }
    public static var retryPolicy: RetryPolicy { Declaration.retryPolicy }
    public static var startToCloseTimeout: Duration { Declaration.startToCloseTimeout }
}
