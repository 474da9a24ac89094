#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive lock between processes on one host, held on `path` (created if missing)
/// for the duration of `body`: `flock(2)`, which the kernel releases when a holder dies.
///
/// Copies of a worker that share a data folder open its SQLite files at the same moment;
/// each would see a migration not yet applied and apply it, and all but one would fail on
/// the migration table. Migrating under this lock makes the later copies find it done.
public enum FileLock {
    public static func withExclusive<Result>(path: String, _ body: () throws -> Result) throws -> Result {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw FileLockError(message: "cannot open the lock file \(path) (errno \(errno)): check that its folder exists and is writable")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileLockError(message: "cannot lock \(path) (errno \(errno))") }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}

public struct FileLockError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
