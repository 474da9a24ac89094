import FlowCoordinator
import Logging
import PostgresNIO

extension PostgresWorkflowStore {
    /// One versioned migration: its statements run in one transaction, recorded in
    /// `flow_schema_migration` with it.
    struct Migration: Sendable {
        var name: String
        var statements: [String]
    }

    /// The store's schema, oldest first. The first version holds what the SQLite store
    /// holds after its tenth, in PostgreSQL's types: times are `timestamptz`; JSON stays text,
    /// the canonical text the coordinator wrote, byte for byte, because replay compares
    /// inputs and outputs as written (`jsonb` would reorder their keys); ids compare
    /// byte-wise (`COLLATE "C"`), so lists page in the same order on either store.
    ///
    /// Never edit a migration that has shipped; add the next one.
    static let migrations: [Migration] = [
        Migration(name: "v1: journals, projections, runs, attributes, schedules", statements: [
            """
            CREATE TABLE workflow (
                id TEXT COLLATE "C" PRIMARY KEY,
                name TEXT NOT NULL,
                status TEXT NOT NULL,
                input TEXT NOT NULL,
                output TEXT,
                error TEXT,
                parked_reason TEXT,
                divergence TEXT,
                cancel_requested BOOLEAN NOT NULL DEFAULT false,
                started_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                finished_at TIMESTAMPTZ,
                trace_context TEXT,
                last_sequence BIGINT NOT NULL,
                epoch BIGINT NOT NULL,
                parent_id TEXT COLLATE "C",
                parent_position INTEGER,
                memo TEXT,
                run INTEGER NOT NULL DEFAULT 1,
                chain TEXT COLLATE "C",
                run_request TEXT
            )
            """,
            "CREATE INDEX workflow_status ON workflow (status, started_at)",
            "CREATE INDEX workflow_started ON workflow (started_at, id)",
            "CREATE INDEX workflow_parent ON workflow (parent_id) WHERE parent_id IS NOT NULL",
            "CREATE INDEX workflow_chain ON workflow (chain) WHERE chain IS NOT NULL",
            """
            CREATE TABLE workflow_event (
                workflow_id TEXT COLLATE "C" NOT NULL,
                sequence BIGINT NOT NULL,
                epoch BIGINT NOT NULL,
                kind TEXT NOT NULL,
                position INTEGER,
                recorded_at TIMESTAMPTZ NOT NULL,
                payload TEXT NOT NULL,
                PRIMARY KEY (workflow_id, sequence)
            )
            """,
            """
            CREATE TABLE result_recipient (
                workflow_id TEXT COLLATE "C" NOT NULL,
                reply_to TEXT NOT NULL,
                correlation_id TEXT NOT NULL,
                PRIMARY KEY (workflow_id, reply_to, correlation_id)
            )
            """,
            """
            CREATE TABLE step (
                message_id TEXT COLLATE "C" PRIMARY KEY,
                workflow_id TEXT COLLATE "C" NOT NULL,
                step_key TEXT NOT NULL,
                activity TEXT NOT NULL,
                queue TEXT NOT NULL,
                input TEXT NOT NULL,
                options TEXT NOT NULL,
                status TEXT NOT NULL,
                sends INTEGER NOT NULL,
                scheduled_at TIMESTAMPTZ NOT NULL,
                sent_at TIMESTAMPTZ,
                last_heard_at TIMESTAMPTZ,
                attempt INTEGER NOT NULL,
                result TEXT,
                error TEXT,
                position INTEGER NOT NULL,
                heartbeat TEXT,
                UNIQUE (workflow_id, position)
            )
            """,
            "CREATE INDEX step_workflow_status ON step (workflow_id, status)",
            """
            CREATE TABLE timer (
                workflow_id TEXT COLLATE "C" NOT NULL,
                timer_key TEXT COLLATE "C" NOT NULL,
                fire_at TIMESTAMPTZ NOT NULL,
                fired BOOLEAN NOT NULL DEFAULT false,
                position INTEGER NOT NULL,
                PRIMARY KEY (workflow_id, timer_key)
            )
            """,
            "CREATE INDEX timer_due ON timer (fire_at) WHERE NOT fired",
            """
            CREATE TABLE history (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                workflow_id TEXT COLLATE "C" NOT NULL,
                at TIMESTAMPTZ NOT NULL,
                kind TEXT NOT NULL,
                step_key TEXT,
                detail TEXT NOT NULL
            )
            """,
            "CREATE INDEX history_workflow ON history (workflow_id, id)",
            """
            CREATE TABLE workflow_attribute (
                workflow_id TEXT COLLATE "C" NOT NULL,
                key TEXT COLLATE "C" NOT NULL,
                text_value TEXT,
                number_value DOUBLE PRECISION,
                PRIMARY KEY (workflow_id, key)
            )
            """,
            "CREATE INDEX workflow_attribute_text ON workflow_attribute (key, text_value)",
            "CREATE INDEX workflow_attribute_number ON workflow_attribute (key, number_value)",
            """
            CREATE TABLE schedule (
                name TEXT COLLATE "C" PRIMARY KEY,
                workflow TEXT NOT NULL,
                input TEXT NOT NULL,
                every_seconds BIGINT,
                cron TEXT,
                next_run_at TIMESTAMPTZ NOT NULL,
                last_run_at TIMESTAMPTZ,
                runs INTEGER NOT NULL DEFAULT 0,
                overlap TEXT NOT NULL DEFAULT 'skip',
                catchup_window_seconds BIGINT,
                jitter_seconds BIGINT,
                paused BOOLEAN NOT NULL DEFAULT false,
                pause_note TEXT,
                buffered TEXT NOT NULL DEFAULT '[]',
                last_workflow_id TEXT,
                skipped INTEGER NOT NULL DEFAULT 0
            )
            """,
        ]),
        Migration(name: "v2: partitions, coordinator sessions and leases", statements: [
            // How many partitions the workflows are spread over: fixed once the store
            // exists, since each workflow keeps the partition it was given.
            "CREATE TABLE flow_setting (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO flow_setting (key, value) VALUES ('partitions', '\(defaultPartitions)')",
            "ALTER TABLE workflow ADD COLUMN partition INTEGER",
            "UPDATE workflow SET partition = \(partitionExpression("id"))",
            "ALTER TABLE workflow ALTER COLUMN partition SET NOT NULL",
            "CREATE INDEX workflow_partition ON workflow (partition, status)",
            // Each coordinator process is a session with an epoch no session had before.
            "CREATE SEQUENCE coordinator_epoch START 1",
            """
            CREATE TABLE coordinator_session (
                epoch BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                expires_at TIMESTAMPTZ NOT NULL
            )
            """,
            // One row per partition once a coordinator has registered: who holds it, under
            // which epoch, until when (the server's clock, the only one read).
            """
            CREATE TABLE partition_lease (
                partition INTEGER PRIMARY KEY,
                epoch BIGINT NOT NULL,
                owner TEXT,
                expires_at TIMESTAMPTZ NOT NULL
            )
            """,
        ]),
    ]

    /// The partitions a new store spreads workflows over.
    static let defaultPartitions = 16

    /// The SQL that gives `column`'s workflow id its partition: PostgreSQL's own hash of
    /// the text, so it is computed in one place, the server.
    static func partitionExpression(_ column: String) -> String {
        "((hashtextextended(\(column), 0) & 9223372036854775807) % (SELECT value::bigint FROM flow_setting WHERE key = 'partitions'))::integer"
    }

    /// The names of the migrations this build knows, oldest first.
    public static var migrationNames: [String] { migrations.map(\.name) }

    /// Applies the migrations the database lacks. Coordinators that start together take
    /// turns: the first holds a transaction-scoped advisory lock while it migrates, and the
    /// others find the work done.
    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLockKey))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS flow_schema_migration (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger
            )
            var applied: Set<String> = []
            for try await name in try await connection.query("SELECT name FROM flow_schema_migration", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            let unknown = applied.subtracting(migrationNames)
            guard unknown.isEmpty else {
                throw WorkflowStoreError(
                    .unavailable,
                    "the store was migrated by a newer build (\(unknown.sorted().joined(separator: ", "))): run that build, or a newer one, against it"
                )
            }
            for migration in migrations where !applied.contains(migration.name) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO flow_schema_migration (name) VALUES (\(migration.name))", logger: logger)
                logger.info("workflow store migrated", metadata: ["migration": "\(migration.name)"])
            }
        }
    }

    /// The migrations applied to the store, oldest first.
    public func appliedMigrations() async throws -> [String] {
        try await read("read the applied migrations") { connection in
            try await connection.query("SELECT name FROM flow_schema_migration ORDER BY applied_at, name", logger: self.logger).all { try $0("name", as: String.self) }
        }
    }

    /// An arbitrary constant: the advisory lock migrations hold ("flow" in ASCII).
    private static let migrationLockKey: Int64 = 0x666c_6f77
}
