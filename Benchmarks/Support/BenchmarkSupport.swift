import Foundation

/// What the benchmarks share: flags, time in milliseconds, percentiles, and replies
/// matched to the requests that wait for them.

/// The integer value of flag `name`, or `value` without it.
public func option(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let parsed = Int(arguments[index + 1]) else { return value }
    return parsed
}

/// The string value of flag `name`.
public func stringOption(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

public func milliseconds(_ duration: Duration) -> Double {
    (Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18) * 1000
}

/// The value at `fraction` (0.5 for the median) of `values`.
public func percentile(_ values: [Double], _ fraction: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]
}

/// Replies by correlation id: a reply may arrive before its requester waits for it.
public actor Arrivals {
    private var waiting: [String: CheckedContinuation<Void, Never>] = [:]
    private var arrived: Set<String> = []

    public init() {}

    public func arrive(_ id: String) {
        if let continuation = waiting.removeValue(forKey: id) { continuation.resume() } else { arrived.insert(id) }
    }

    public func wait(for id: String) async {
        if arrived.remove(id) != nil { return }
        await withCheckedContinuation { waiting[id] = $0 }
    }
}

/// The `flow` processes a benchmark starts on its private topology: the executable built
/// beside the benchmark, quiet, with no metrics port.
public struct FlowProcesses: Sendable {
    public let executable: URL
    public let prefix: String
    public let url: String

    /// Exits with how to build `flow` when it is not beside this benchmark (or at
    /// `executable`, another build's, for a side-by-side run).
    public init(prefix: String, url: String, executable: URL? = nil) {
        self.executable = executable ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flow")
        guard FileManager.default.isExecutableFile(atPath: self.executable.path) else {
            FileHandle.standardError.write(Data("flow is not built at \(self.executable.path): run swift build -c release first\n".utf8))
            exit(1)
        }
        self.prefix = prefix
        self.url = url
    }

    /// Starts `flow ARGUMENTS` on the benchmark's topology, with `environment` added to
    /// this process's.
    public func launch(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments + ["--topology-prefix", prefix, "--metrics-port", "off", "--amqp-url", url, "--log-level", "error"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        try process.run()
        return process
    }
}

/// What `body` gives (the broker connection, say), or, when it throws, the reason on
/// standard error and exit status 1: a top-level throw would stop the process with a crash
/// report.
public func orExit<Value>(_ body: () async throws -> Value) async -> Value {
    do {
        return try await body()
    } catch {
        FileHandle.standardError.write(Data("\(CommandLine.arguments.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "benchmark"): \(error)\n".utf8))
        exit(1)
    }
}
