import FlowCore
import Foundation

/// `echo`: answers with its input. The cheapest real round trip through the broker, a
/// worker and its store: for checking a deployment end to end, and the step of the
/// coordinator's benchmark workflow.
public enum Echo: ActivityDeclaration {
    public static let name = "echo"

    public static let queue = WorkQueue.default

    public typealias Input = JSONText

    public typealias Output = JSONText
}
