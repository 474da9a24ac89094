import FlowContracts
import FlowCore
import FlowRuntime

/// Runs ``Echo`` (`FlowContracts`).
public struct EchoActivity: DeclaredActivity {
    public typealias Declaration = Echo
    public typealias Input = Echo.Input
    public typealias Output = Echo.Output

    public init() {}

    public func run(_ input: JSONText, context: ActivityContext) async throws -> JSONText {
        input
    }
}
