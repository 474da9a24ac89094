import Foundation

/// The real `flow` executable running as a child process, for tests that send it signals.
public final class FlowProcess: @unchecked Sendable {
    private let process = Process()
    public let logFile: URL

    /// Starts `flow ARGUMENTS` with `environment` added; its output goes to a log file.
    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("flow-process-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logFile)
        process.executableURL = Repository.flowExecutable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Sends a signal (SIGTERM for a graceful stop, SIGKILL for a crash).
    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Sends `signal` the moment `condition` holds (``FlowProcess/onThread(when:timeout:do:)``);
    /// returns whether it was sent within `timeout`.
    public func signal(_ signal: Int32, when condition: @escaping @Sendable () -> Bool, timeout: Duration) async -> Bool {
        let pid = process.processIdentifier
        return await Self.onThread(when: condition, timeout: timeout) { kill(pid, signal) }
    }

    /// Runs `action` the moment `condition` holds, watching from a thread of its own every
    /// millisecond; returns whether it ran within `timeout`. A test that must catch a child
    /// mid-way (a job past its first checkpoint and far from done) cannot watch from a
    /// task: the cooperative pool may be busy with other tests' computations for longer
    /// than the child takes to finish.
    public static func onThread(when condition: @escaping @Sendable () -> Bool, timeout: Duration, do action: @escaping @Sendable () -> Void = {}) async -> Bool {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let deadline = ContinuousClock.now + timeout
                while ContinuousClock.now < deadline {
                    if condition() {
                        action()
                        continuation.resume(returning: true)
                        return
                    }
                    usleep(1000)
                }
                continuation.resume(returning: false)
            }
        }
    }

    /// Waits for the process to exit and returns its status, or nil after `timeout`.
    public func waitForExit(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// What the process printed so far.
    public var log: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: logFile)
    }
}
