/// Values a background task collects (deliveries, ids) for a test to wait on and inspect.
public actor Collected<Element: Sendable> {
    public private(set) var all: [Element] = []

    public init() {}

    public var count: Int { all.count }

    public func add(_ element: Element) { all.append(element) }

    /// Waits until at least `expected` values arrived; returns false when `timeout` passed
    /// first, so a missing value reports instead of hanging the run.
    @discardableResult
    public func wait(forCount expected: Int, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while all.count < expected {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}
