import Synchronization

/// A value that lives with a workflow's run: the code changes it as it goes, signals it
/// receives change it, and query handlers (`WorkflowContext.onQuery`) read it. A replay
/// runs the code again, so the state comes back as it was.
///
/// ```swift
/// let progress = WorkflowState("uploading")
/// context.onQuery(Progress.self) { .init(stage: progress.value) }
/// …
/// progress.value = "training"
/// ```
///
/// A query reads it between two facts of the journal, never in the middle of the code's
/// turn; the lock makes each read and write whole.
public final class WorkflowState<Value: Sendable>: Sendable {
    private let state: Mutex<Value>

    public init(_ value: Value) {
        state = Mutex(value)
    }

    public var value: Value {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }

    /// Changes the value in place.
    public func update(_ change: (inout Value) -> Void) {
        state.withLock { change(&$0) }
    }
}
