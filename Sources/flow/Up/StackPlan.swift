import FlowCore
import Foundation

/// What `flow up` runs: each process of a local stack, its arguments and the port it
/// serves health on. A value, decided before anything starts, and tested on its own.
struct StackPlan: Sendable, Equatable {
    struct Member: Sendable, Equatable {
        /// `worker-default-1`, `coordinator`, `console`: the prefix of its log lines.
        var name: String
        var arguments: [String]
        /// Where it serves `/healthz` (the console: its pages).
        var port: Int
        /// Set for it over the stack's own environment.
        var environment: [String: String] = [:]
    }

    /// A model `flow ml serve` serves in the stack, and the port it takes.
    struct ServedModel: Sendable, Equatable {
        var folder: String
        var port: Int
        /// Whether the OpenAI workers call it (no `OPENAI_API_KEY` is set).
        var answersOpenAI: Bool
    }

    /// The name the served base model answers to, which the OpenAI workers ask for.
    static let servedModelName = "organisation-base"

    var members: [Member]

    /// The first copy of each worker keeps its standard port (9464, 9465, 9466); further
    /// copies take ports from 9500 up.
    static let extraPortsStart = 9500

    /// - Parameters:
    ///   - copies: worker queue name → how many copies, in the order workers start.
    ///   - common: arguments every process gets (the broker URL, a topology prefix).
    ///   - firstPort: when given, every process takes the next port from it instead (for
    ///     a second stack beside the first, and for tests).
    ///   - served: a model for `flow ml serve` to serve first; when it answers for OpenAI,
    ///     the OpenAI workers call it.
    init(
        copies: [(worker: String, count: Int)], dataDir: String, coordinatorDataDir: String, consolePort: Int, runCoordinator: Bool, runConsole: Bool, common: [String],
        firstPort: Int? = nil, served: ServedModel? = nil
    ) {
        var members: [Member] = []
        if let served {
            members.append(Member(name: "ml-serve", arguments: ["ml", "serve", "--model", served.folder, "--name", Self.servedModelName, "--port", String(served.port)], port: served.port))
        }
        let openAI: [String: String] = served.map { served in
            served.answersOpenAI
                ? ["OPENAI_API_KEY": "local", "OPENAI_BASE_URL": "http://127.0.0.1:\(served.port)/v1", "FLOW_OPENAI_MODEL": Self.servedModelName] : [:]
        } ?? [:]
        var extraPort = firstPort ?? Self.extraPortsStart
        let standard = firstPort == nil ? ["default": 9464, "ml": 9465, "openai": 9466] : [:]
        for (worker, count) in copies {
            for copy in 1...max(1, count) where count > 0 {
                let port: Int
                if copy == 1, let known = standard[worker] {
                    port = known
                } else {
                    port = extraPort
                    extraPort += 1
                }
                members.append(Member(
                    name: "worker-\(worker)-\(copy)", arguments: ["worker", worker, "--data-dir", dataDir, "--metrics-port", String(port)] + common, port: port,
                    environment: worker == "openai" ? openAI : [:]
                ))
            }
        }
        if runCoordinator {
            let port = firstPort == nil ? 9467 : extraPort
            extraPort += 1
            members.append(Member(name: "coordinator", arguments: ["coordinator", "--data-dir", coordinatorDataDir, "--metrics-port", String(port)] + common, port: port))
        }
        if runConsole {
            let consolePort = firstPort == nil ? consolePort : extraPort
            let endpoints = members.map { "\($0.name)=http://127.0.0.1:\($0.port)" }.joined(separator: ",")
            members.append(Member(name: "console", arguments: ["console", "--port", String(consolePort), "--endpoints", endpoints] + common, port: consolePort))
        }
        self.members = members
    }

    /// Parses `default=2,ml=1,openai=1`; queues not named run one copy, in the standard order.
    static func copies(_ text: String?, known: [String]) throws(StackPlanError) -> [(worker: String, count: Int)] {
        var counts = Dictionary(uniqueKeysWithValues: known.map { ($0, 1) })
        for item in (text ?? "").split(separator: ",") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let count = Int(parts[1]), (0...16).contains(count) else {
                throw StackPlanError("--workers takes queue=copies pairs such as default=2,ml=1,openai=1 (0 to 16 copies), got '\(item)'")
            }
            guard counts[parts[0]] != nil else {
                throw StackPlanError("--workers: no worker is named '\(parts[0])': use \(known.joined(separator: ", "))")
            }
            counts[parts[0]] = count
        }
        return known.map { ($0, counts[$0] ?? 1) }
    }
}

struct StackPlanError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
