import ArgumentParser
import FlowCoordinator
import FlowPostgres
import Foundation
import Logging

/// `flow store`: the workflow store itself, apart from any coordinator.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Move a coordinator's workflow store.",
        subcommands: [Migrate.self]
    )

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a SQLite workflow store into an empty PostgreSQL one: workflows, journals, projections and schedules.",
            discussion: """
                Stop the coordinator on the source first: a workflow that moved on while it was copied would arrive \
                half-way. The copy is one transaction, checked table by table: the destination ends with as many rows of \
                each kind as the source, or nothing is kept. Then start the coordinator with --store on the destination. \
                Example: flow store migrate --from sqlite:.flow/data/workflows.sqlite --to postgres://flow@127.0.0.1:5440/flow
                """
        )

        @Option(help: "The SQLite store to copy: sqlite:PATH (the coordinator's workflows.sqlite).")
        var from: String

        @Option(help: "The empty PostgreSQL store to copy into: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.")
        var to: String

        func run() async throws {
            guard case .sqlite(let path) = try CoordinatorStoreOptions(dataDir: nil, store: from).choice else {
                throw ValidationError("--from must name a SQLite store, sqlite:PATH; got \(PostgresStoreLocation.redacting(from))")
            }
            guard case .postgres(let location) = try CoordinatorStoreOptions(dataDir: nil, store: to).choice else {
                throw ValidationError("--to must name a PostgreSQL store, postgres://USER@HOST/DATABASE; got \(to)")
            }
            guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no workflow store at \(path): --from names a file that does not exist") }
            let started = ContinuousClock.now
            do {
                let source = try SQLiteWorkflowStore(path: path, readOnly: true)
                let destination = try await PostgresWorkflowStore.open(location, maximumConnections: 1, logger: Logger(label: "flow.store"))
                let counts: [PostgresStoreImport.TableCount]
                do {
                    counts = try await PostgresStoreImport.copy(from: source, to: destination) { table, rows in
                        if rows % 10_000 == 0 { print("\(table): \(rows) rows") }
                    }
                } catch {
                    await destination.close()
                    throw error
                }
                await destination.close()
                let elapsed = ContinuousClock.now - started
                print("copied \(path) to \(location) in \(String(format: "%.1f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)) s")
                print("rows, the same on both sides: " + counts.map(\.description).joined(separator: ", "))
            } catch let error as WorkflowStoreError {
                throw ValidationError(error.message)
            }
        }
    }
}
