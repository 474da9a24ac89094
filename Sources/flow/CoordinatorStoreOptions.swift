import ArgumentParser
import FlowCoordinator
import FlowPostgres
import Foundation
import Logging

/// Where the coordinator keeps its store, and where `flow workflow` and `flow schedule`
/// read it: SQLite in the data folder (the default), or a PostgreSQL server.
struct CoordinatorStoreOptions: ParsableArguments {
    @Option(help: "The coordinator's data folder, holding workflows.sqlite (default: $FLOW_COORDINATOR_DATA_DIR, then $FLOW_DATA_DIR, then .flow/data).")
    var dataDir: String?

    @Option(help: "The workflow store: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…], or sqlite:PATH (default: $FLOW_WORKFLOW_STORE, then workflows.sqlite in the data folder).")
    var store: String?

    init() {}

    init(dataDir: String?, store: String? = nil) {
        self.dataDir = dataDir
        self.store = store
    }

    var dataFolder: URL {
        let environment = ProcessInfo.processInfo.environment
        return URL(fileURLWithPath: dataDir ?? environment["FLOW_COORDINATOR_DATA_DIR"] ?? environment["FLOW_DATA_DIR"] ?? ".flow/data")
    }

    /// Which store the options name.
    enum Choice {
        case sqlite(path: String)
        case postgres(PostgresStoreLocation)
    }

    var choice: Choice {
        get throws {
            guard let text = store ?? ProcessInfo.processInfo.environment["FLOW_WORKFLOW_STORE"], !text.isEmpty else {
                return .sqlite(path: dataFolder.appendingPathComponent("workflows.sqlite").path)
            }
            if PostgresStoreLocation.isPostgresURL(text) {
                do {
                    return .postgres(try PostgresStoreLocation(url: text))
                } catch {
                    throw ValidationError("--store: \(error)")
                }
            }
            guard text.hasPrefix("sqlite:") else {
                throw ValidationError("--store '\(text)' is neither postgres://USER@HOST/DATABASE nor sqlite:PATH")
            }
            return .sqlite(path: String(text.dropFirst("sqlite:".count)))
        }
    }

    /// The store for the log and `--check`, without a password.
    func describe() -> String {
        switch try? choice {
        case .sqlite(let path)?: path
        case .postgres(let location)?: "\(location)"
        case nil: store ?? "?"
        }
    }

    /// The store a coordinator writes, created or migrated as needed.
    func open(groupCommit: Bool, logger: Logger) async throws -> any WorkflowStore {
        do {
            switch try choice {
            case .sqlite(let path):
                try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
                return try SQLiteWorkflowStore(path: path, groupCommit: groupCommit)
            case .postgres(let location):
                return try await PostgresWorkflowStore.open(location, logger: logger)
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The store, for commands that look while a coordinator runs: SQLite read-only.
    func openForReading() async throws -> any WorkflowStore {
        do {
            switch try choice {
            case .sqlite(let path):
                guard FileManager.default.fileExists(atPath: path) else {
                    throw ValidationError("no workflow store at \(path): pass the coordinator's --data-dir or --store (or leave both out to ask the coordinator over the broker)")
                }
                return try SQLiteWorkflowStore(path: path, readOnly: true)
            case .postgres(let location):
                return try await PostgresWorkflowStore.open(location, maximumConnections: 2, logger: Logger(label: "flow.store"))
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
