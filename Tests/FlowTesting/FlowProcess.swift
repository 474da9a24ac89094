import Foundation
import Synchronization

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

    /// Starts watching for `condition` and sends `signal` the moment it holds
    /// (``ThreadWatch``). Start it before whatever makes the condition true.
    public func signal(_ signal: Int32, when condition: @escaping @Sendable () -> Bool, timeout: Duration) -> ThreadWatch {
        let pid = process.processIdentifier
        return ThreadWatch(when: condition, timeout: timeout) { kill(pid, signal) }
    }

    /// The port its log says it serves health and metrics on (`http.address`), once it
    /// says so; for a process started with `--metrics-port 0` (any free port), so that
    /// tests never depend on a fixed port being free.
    public func servingPort(timeout: Duration = .seconds(30)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = log.split(separator: "\n").first(where: { $0.contains("serving /healthz") }),
               let address = line.range(of: #"127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                return Int(line[address].split(separator: ":").last!)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
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

/// Runs an action the moment a condition holds, watching from a thread of its own every
/// millisecond; ``ran()`` says whether it ran before the timeout.
///
/// A test that must catch a child process mid-way (a job past its first checkpoint and far
/// from done) cannot watch from a task, nor start watching after an `await`: the
/// cooperative pool may be busy with other tests' computations for longer than the child
/// takes to finish. The watch starts in the initializer, on its own thread.
public final class ThreadWatch: Sendable {
    private enum State {
        case watching([CheckedContinuation<Bool, Never>])
        case finished(Bool)
    }

    private let state = Mutex<State>(.watching([]))

    public init(when condition: @escaping @Sendable () -> Bool, timeout: Duration, do action: @escaping @Sendable () -> Void = {}) {
        Thread.detachNewThread { [self] in
            let deadline = ContinuousClock.now + timeout
            var ran = false
            while ContinuousClock.now < deadline {
                if condition() {
                    action()
                    ran = true
                    break
                }
                usleep(1000)
            }
            let waiting = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
                guard case .watching(let waiting) = state else { return [] }
                state = .finished(ran)
                return waiting
            }
            for continuation in waiting { continuation.resume(returning: ran) }
        }
    }

    /// Whether the action ran, once the watch is over.
    public func ran() async -> Bool {
        await withCheckedContinuation { continuation in
            let finished = state.withLock { state -> Bool? in
                switch state {
                case .finished(let ran): return ran
                case .watching(let waiting):
                    state = .watching(waiting + [continuation])
                    return nil
                }
            }
            if let finished { continuation.resume(returning: finished) }
        }
    }
}
