// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "AntifragileFlow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "flow", targets: ["flow"]),
        .library(name: "FlowCore", targets: ["FlowCore"]),
        .library(name: "FlowAMQP", targets: ["FlowAMQP"]),
        // Run your own workflows in-process against activity stubs, with time skipped.
        .library(name: "FlowTestKit", targets: ["FlowTestKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter would add grpc-swift to every build.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C libraries: one system-library target each, imported by exactly one Swift module.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),

        // Pure core: the wire protocol, headers, replies and the broker topology. No I/O.
        .target(name: "FlowCore"),

        // The actors' contracts: for each queue, its activities' names, typed inputs and
        // outputs, timeouts and retry policies. What callers depend on; no implementations.
        .target(name: "FlowContracts", dependencies: ["FlowCore"]),

        // The transport seam: the AMQP message values and the MessageTransport protocol the
        // runtime and the coordinator take. No C, no I/O.
        .target(name: "FlowTransport", dependencies: ["FlowCore"]),
        // Metrics, traces and logs that connect (docs/observability.md): the metric
        // catalogue on swift-metrics and swift-prometheus, W3C trace context carried in AMQP
        // headers and HTTP requests, span names and attributes. No exporter: the CLI
        // bootstraps swift-otel when OTEL_EXPORTER_OTLP_ENDPOINT is set.
        .target(
            name: "FlowObservability",
            dependencies: [
                "FlowCore",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "FlowClient", dependencies: ["FlowCore", "FlowTransport", "FlowObservability", .product(name: "Logging", package: "swift-log")]),

        // The operator console (`flow console`, docs/console.md): pages rendered on the
        // server from what the broker, the coordinator and the workers answer.
        .target(
            name: "FlowConsole",
            dependencies: [
                "FlowCore", "FlowContracts", "FlowTransport", "FlowClient", "FlowDeadLetters", "FlowHTTP", "FlowObservability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // The AMQP transport on rabbitmq-c: connection, confirms, consumers, recovery, topology.
        .target(
            name: "FlowAMQP",
            dependencies: [
                "FlowCore",
                "FlowTransport",
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The worker runtime: activity registry and context, retries, dead-lettering,
        // idempotency, graceful shutdown. Shared by the three worker actors.
        .target(
            name: "FlowRuntime",
            dependencies: [
                "FlowCore",
                "FlowTransport",
                "FlowObservability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),

        // The default actor's activities: documents, storage, health, cleanup, delegation.
        .target(
            name: "FlowDefaultActivities",
            dependencies: [
                "FlowCore", "FlowContracts", "FlowTransport", "FlowRuntime",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),

        // HTTP over libcurl (the one importer of CCurl): the OpenAI client and the broker's
        // management API use it.
        .target(name: "FlowHTTP", dependencies: ["FlowCore", "CCurl"]),

        // The OpenAI-compatible client: chat, streaming, embeddings, rate limits,
        // retries, the response cache and cost accounting.
        .target(
            name: "FlowOpenAI",
            dependencies: [
                "FlowCore", "FlowHTTP", "FlowObservability",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),

        // The OpenAI actor's activities and their versioned prompts.
        .target(
            name: "FlowOpenAIActivities",
            dependencies: [
                "FlowCore", "FlowContracts", "FlowTransport", "FlowRuntime", "FlowOpenAI", "FlowPostgres", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Prompts")]
        ),

        // The ML engine: model formats (safetensors), and in time tensors on OpenBLAS,
        // models, tokenizers, LoRA and the trainer.
        .target(name: "FlowML", dependencies: ["FlowCore", "COpenBLAS", .product(name: "HeapModule", package: "swift-collections")]),

        // The ML actor's activities: training jobs and evaluation on the ML engine.
        .target(
            name: "FlowMLActivities",
            dependencies: [
                "FlowCore", "FlowContracts", "FlowRuntime", "FlowML", "FlowObservability",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),

        // `flow ml serve`: the OpenAI API over the ML engine, for a base model and its
        // LoRA adapters.
        .target(
            name: "FlowServing",
            dependencies: [
                "FlowCore", "FlowML",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The workflow coordinator: durable workflows over activity messages, their
        // history in SQLite, schedules.
        .target(
            name: "FlowCoordinator",
            dependencies: [
                "FlowCore", "FlowTransport", "FlowRuntime", "FlowObservability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),

        // The coordinator's store on a PostgreSQL server (postgres-nio), for coordinators
        // that share one store: FLOW_WORKFLOW_STORE=postgres://… (docs/workflows.md).
        .target(
            name: "FlowPostgres",
            dependencies: [
                "FlowCore", "FlowCoordinator", "FlowOpenAI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // Only to read a SQLite store that `flow store migrate` moves here.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Workflows in a test's own process: activity stubs, a clock that skips time, the
        // journal to inspect (docs/workflows.md, "Testing workflows").
        .target(
            name: "FlowTestKit",
            dependencies: ["FlowCore", "FlowCoordinator", .product(name: "Logging", package: "swift-log")]
        ),

        // The application's workflows: document_onboarding, echo_chain.
        .target(
            name: "FlowWorkflows",
            dependencies: ["FlowCore", "FlowContracts", "FlowCoordinator"]
        ),

        // Inspect, replay, purge, export and import the dead-letter queue.
        .target(
            name: "FlowDeadLetters",
            dependencies: ["FlowCore", "FlowTransport"]
        ),

        // The command-line tool: flag parsing and calls into the modules, nothing else.
        .executableTarget(
            name: "flow",
            dependencies: [
                "FlowCore",
                "FlowContracts",
                "FlowAMQP",
                "FlowClient",
                "FlowConsole",
                "FlowRuntime",
                "FlowDefaultActivities",
                "FlowDeadLetters",
                "FlowCoordinator",
                "FlowPostgres",
                "FlowWorkflows",
                "FlowHTTP",
                "FlowML",
                "FlowMLActivities",
                "FlowServing",
                "FlowOpenAI",
                "FlowOpenAIActivities",
                "FlowObservability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ]
        ),

        // Helpers shared by the test targets: broker location, unique names.
        .target(
            name: "FlowTesting",
            dependencies: [
                "FlowCore", "FlowAMQP", "FlowRuntime", "FlowPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/FlowTesting"
        ),

        // Benchmarks: a bare rabbitmq-c round trip in C, measured beside the Swift transport.
        .target(
            name: "CBareRoundTrip",
            path: "Benchmarks/CBareRoundTrip",
            linkerSettings: [.linkedLibrary("rabbitmq")]
        ),
        .target(name: "BenchmarkSupport", path: "Benchmarks/Support"),
        .executableTarget(
            name: "flow-transport-benchmark",
            dependencies: ["FlowCore", "FlowAMQP", "CBareRoundTrip"],
            path: "Benchmarks/TransportBenchmark"
        ),

        .executableTarget(
            name: "flow-activity-benchmark",
            dependencies: [
                "BenchmarkSupport", "FlowCore", "FlowAMQP", "FlowRuntime", "FlowTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            path: "Benchmarks/ActivityBenchmark"
        ),

        .executableTarget(
            name: "flow-workflow-benchmark",
            dependencies: ["BenchmarkSupport", "FlowCore", "FlowAMQP", "FlowCoordinator", "FlowPostgres", "FlowWorkflows", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/WorkflowBenchmark"
        ),

        .executableTarget(
            name: "flow-query-benchmark",
            dependencies: ["BenchmarkSupport", "FlowCore", "FlowAMQP", "FlowClient", "FlowCoordinator", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/QueryBenchmark"
        ),

        .executableTarget(
            name: "flow-openai-benchmark",
            dependencies: [
                "BenchmarkSupport", "FlowCore", "FlowAMQP", "FlowRuntime", "FlowHTTP", "FlowOpenAI", "FlowOpenAIActivities", "FlowTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/OpenAIBenchmark"
        ),

        .executableTarget(
            name: "flow-serve-benchmark",
            dependencies: ["BenchmarkSupport", "FlowML", "FlowServing", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/ServeBenchmark"
        ),

        .executableTarget(
            name: "flow-training-benchmark",
            dependencies: ["FlowML"],
            path: "Benchmarks/TrainingBenchmark"
        ),

        .testTarget(
            name: "FlowServingTests",
            dependencies: ["FlowServing", "FlowCore", "FlowTesting", "FlowTransport"]
        ),
        .testTarget(name: "FlowCoreTests", dependencies: ["FlowCore", "FlowContracts", "FlowTesting"]),
        .testTarget(
            name: "FlowConsoleTests",
            dependencies: ["FlowCore", "FlowClient", "FlowConsole", "FlowHTTP", "FlowObservability", "FlowTesting", .product(name: "Logging", package: "swift-log")],
            exclude: ["Browser"]
        ),
        .testTarget(name: "FlowAMQPTests", dependencies: ["FlowCore", "FlowAMQP", "FlowTesting"]),
        .testTarget(name: "FlowClusterTests", dependencies: ["FlowCore", "FlowAMQP", "FlowTesting"]),
        .testTarget(
            name: "FlowRuntimeTests",
            dependencies: [
                "FlowCore", "FlowAMQP", "FlowRuntime", "FlowTesting", "FlowPostgres", .product(name: "Logging", package: "swift-log"), .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "FlowDeadLettersTests",
            dependencies: ["FlowCore", "FlowAMQP", "FlowRuntime", "FlowDeadLetters", "FlowDefaultActivities", "FlowTesting"]
        ),
        .testTarget(
            name: "FlowDefaultActivitiesTests",
            dependencies: ["FlowCore", "FlowAMQP", "FlowRuntime", "FlowDefaultActivities", "FlowObservability", "FlowTesting"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "FlowCoordinatorTests",
            dependencies: [
                "FlowCore", "FlowAMQP", "FlowClient", "FlowRuntime", "FlowCoordinator", "FlowWorkflows", "FlowDefaultActivities", "FlowDeadLetters",
                "FlowOpenAI", "FlowOpenAIActivities", "FlowObservability", "FlowTesting", "FlowPostgres", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "FlowTestKitTests",
            dependencies: ["FlowCore", "FlowContracts", "FlowCoordinator", "FlowTestKit", "FlowWorkflows"]
        ),
        .testTarget(
            name: "FlowOpenAITests",
            dependencies: [
                "FlowCore", "FlowAMQP", "FlowRuntime", "FlowHTTP", "FlowOpenAI", "FlowOpenAIActivities", "FlowObservability", "FlowPostgres", "FlowTesting",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "FlowMLTests",
            dependencies: ["FlowCore", "FlowAMQP", "FlowML", "FlowMLActivities", "FlowRuntime", "FlowDefaultActivities", "FlowTesting"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "FlowObservabilityTests",
            dependencies: [
                "FlowCore", "FlowAMQP", "FlowClient", "FlowHTTP", "FlowObservability", "FlowTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(
            name: "DeploymentTests",
            dependencies: [
                "FlowCore", "FlowTesting",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
