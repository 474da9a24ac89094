import Foundation
import GRDB

/// The SQLite files our actors keep their durable memory in (the activity store, the
/// workflow store), opened one way.
public enum LocalDatabase {
    /// Opens (or creates, with its folder) the database at `path`.
    ///
    /// Write-ahead logging with `synchronous = NORMAL`: a commit survives the crash of the
    /// process, which is what these stores are for, without an fsync per commit; only a
    /// power loss of the machine can drop the newest commits. (A `DatabasePool`, for reads
    /// beside the writer, measured slower for the activity store: one queue.)
    public static func open(path: String, readOnly: Bool = false) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        if !readOnly {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true
            )
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
        }
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Opens (or creates) the database at `path` for a writer with readers beside it: a
    /// `DatabasePool`, whose reads run on their own connections while the one writer writes,
    /// and see the last commit. Same journal and durability as ``open(path:readOnly:)``.
    public static func openPool(path: String) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        return try DatabasePool(path: path, configuration: configuration)
    }
}
