import FlowCore
import FlowRuntime

/// `echo`: answers with its input. The cheapest real round trip through the broker, a
/// worker and its store: for checking a deployment end to end, and the step of the
/// coordinator's benchmark workflow.
public struct Echo: Activity {
    public static let name = "echo"
    public static let queue = WorkQueue.default
    public typealias Input = JSONText
    public typealias Output = JSONText

    public init() {}

    public func run(_ input: JSONText, context: ActivityContext) async throws -> JSONText {
        input
    }
}
