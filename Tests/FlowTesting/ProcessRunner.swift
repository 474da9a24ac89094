import Foundation

/// Runs a command to completion and captures what it printed.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String
}

public enum ProcessRunner {
    /// The same, from async code: the wait is on a thread of its own. On Swift's cooperative
    /// pool (two threads here) a test waiting for a process whose answer needs the pool (pika
    /// waiting for an in-process worker's reply, `flow activity run` for the harness's)
    /// stalled every test of the suite until its timeout when two such waits met.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil) async throws -> ProcessOutput {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try blockingRun(executable, arguments, environment: environment, input: input) })
            }
        }
    }

    /// Runs to completion on the calling thread: only for threads that may block.
    public static func blockingRun(_ executable: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> ProcessOutput {
        try run(executable, arguments, environment: environment, input: input)
    }

    /// Runs `executable` with `arguments` and `environment` added to this process's own,
    /// `input` (small: it is written whole before the output is read) on standard input.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> ProcessOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        let standardInput = Pipe()
        if input != nil { process.standardInput = standardInput }
        try process.run()
        if let input {
            standardInput.fileHandleForWriting.write(Data(input.utf8))
            try standardInput.fileHandleForWriting.close()
        }
        // Read before waiting, so a chatty process cannot fill the pipe and block.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessOutput(
            status: process.terminationStatus,
            standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData, as: UTF8.self)
        )
    }
}
