import FlowCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Runs the members of a ``StackPlan`` as child processes: restarts one that exits, after
/// a backoff that grows while it keeps failing, streams their output with a prefix per
/// process, and on a graceful shutdown stops them in reverse order (SIGTERM, then SIGKILL
/// after the grace period).
final class StackSupervisor: Service, Sendable {
    let plan: StackPlan
    let executable: URL
    let quiet: Bool
    let grace: Duration
    let logger: Logger
    private let output = Mutex(())
    private let running = Mutex<[String: Process]>([:])
    private let stopping = Atomic<Bool>(false)

    static let backoff = Backoff(initial: .seconds(1), multiplier: 2, maximum: .seconds(30))
    /// A process that ran this long counts as healthy again: its next crash waits the least.
    static let healthyAfter: Duration = .seconds(60)

    init(plan: StackPlan, executable: URL, quiet: Bool, grace: Duration = .seconds(30), logger: Logger) {
        self.plan = plan
        self.executable = executable
        self.quiet = quiet
        self.grace = grace
        self.logger = logger
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for member in plan.members {
                group.addTask { await self.supervise(member) }
                // Each starts once the one before it answers, so the console finds the
                // others up; a slow one only delays, never blocks, the rest.
                _ = await Self.waitUntilServing(port: member.port, timeout: .seconds(20))
            }
            printStatus()
            group.addTask {
                try? await gracefulShutdown()
                await self.stopAll()
            }
        }
    }

    /// Keeps one member running until the stack stops.
    private func supervise(_ member: StackPlan.Member) async {
        var failures = 0
        while !stopping.load(ordering: .acquiring) {
            let started = ContinuousClock.now
            let status: Int32
            do {
                status = try await runOnce(member)
            } catch {
                say(member.name, "could not start: \(error)")
                status = -1
            }
            if stopping.load(ordering: .acquiring) { return }
            failures = ContinuousClock.now - started >= Self.healthyAfter ? 1 : failures + 1
            let wait = Self.backoff.delay(afterFailures: failures)
            say(member.name, "exited with status \(status); starting it again in \(String(format: "%.1f", Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18)) s")
            try? await Task.sleep(for: wait)
        }
    }

    private func runOnce(_ member: StackPlan.Member) async throws -> Int32 {
        let process = Process()
        process.executableURL = executable
        process.arguments = member.arguments
        if !member.environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(member.environment) { _, set in set }
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let buffer = Mutex(Data())
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self, !chunk.isEmpty else { return }
            let lines: [Substring] = buffer.withLock { pending in
                pending.append(chunk)
                guard let last = pending.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
                let complete = String(decoding: pending[..<last], as: UTF8.self)
                pending.removeSubrange(...last)
                return complete.split(separator: "\n", omittingEmptySubsequences: false)
            }
            if !self.quiet { for line in lines { self.say(member.name, String(line)) } }
        }
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { process in
            exited.continuation.yield(process.terminationStatus)
            exited.continuation.finish()
        }
        try process.run()
        running.withLock { $0[member.name] = process }
        var status: Int32 = 0
        for await code in exited.stream { status = code }
        pipe.fileHandleForReading.readabilityHandler = nil
        running.withLock { _ = $0.removeValue(forKey: member.name) }
        return status
    }

    /// Stops every member, the last started first.
    private func stopAll() async {
        stopping.store(true, ordering: .releasing)
        for member in plan.members.reversed() {
            guard let process = running.withLock({ $0[member.name] }) else { continue }
            say("up", "stopping \(member.name)")
            kill(process.processIdentifier, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning {
                say("up", "\(member.name) did not stop within \(grace); killing it")
                kill(process.processIdentifier, SIGKILL)
            }
        }
    }

    private func printStatus() {
        let width = max(12, (plan.members.map(\.name.count).max() ?? 0) + 2)
        var lines = ["", "process".padding(toLength: width, withPad: " ", startingAt: 0) + "pid      health"]
        for member in plan.members {
            let pid = running.withLock { $0[member.name]?.processIdentifier }.map(String.init) ?? "-"
            let url = member.name == "console" ? "http://127.0.0.1:\(member.port)" : "http://127.0.0.1:\(member.port)/healthz"
            lines.append(member.name.padding(toLength: width, withPad: " ", startingAt: 0) + pid.padding(toLength: 9, withPad: " ", startingAt: 0) + url)
        }
        if let console = plan.members.first(where: { $0.name == "console" }) {
            lines += ["", "console: http://127.0.0.1:\(console.port)", "Ctrl-C stops everything."]
        }
        output.withLock { _ in FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8)) }
    }

    private func say(_ name: String, _ line: String) {
        output.withLock { _ in
            FileHandle.standardOutput.write(Data("[\(name)] \(line)\n".utf8))
        }
    }

    /// Whether something answers on `port` within `timeout`.
    static func waitUntilServing(port: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isListening(port: port) { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    static func isListening(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
