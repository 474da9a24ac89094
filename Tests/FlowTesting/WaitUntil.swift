/// Waits until `condition` holds, polling every 2 ms; throws (failing the test with where it
/// waited) after `timeout`. For in-memory tests, where conditions hold within milliseconds.
public func waitUntil(
    timeout: Duration = .seconds(120), fileID: String = #fileID, line: Int = #line, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(2))
    }
    throw WaitTimedOut(description: "the condition waited for at \(fileID):\(line) did not hold within \(timeout)")
}

/// A condition a test waited for did not come to hold.
public struct WaitTimedOut: Error, CustomStringConvertible {
    public var description: String
}
