import FlowCore
/// Declarations of the activities the ML and OpenAI actors run, so workflows and the
/// command line can call them without linking their code (which needs OpenBLAS, model
/// files or an API key). Their implementations live with their actors.

/// What the calls of one OpenAI activity used and cost.
public struct ModelUsage: Codable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var costUSD: Double
    /// Chat calls made, cache hits included.
    public var calls: Int
    public var cachedCalls: Int

    public init(promptTokens: Int = 0, completionTokens: Int = 0, costUSD: Double = 0, calls: Int = 0, cachedCalls: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.costUSD = costUSD
        self.calls = calls
        self.cachedCalls = cachedCalls
    }
}

/// `analyze_document_content` on `openai-queue`: a structured analysis of a document's
/// text (summary, themes, risks, decisions, open questions), map-reduce over parts for
/// documents longer than one call should carry.
public enum AnalyzeDocumentContent: ActivityDeclaration {
    public static let name = "analyze_document_content"
    public static let queue = WorkQueue.openai
    /// Three attempts, each with up to two HTTP retries of its own: at most nine calls a step.
    public static var retryPolicy: RetryPolicy { RetryPolicy(maximumAttempts: 3) }
    public static let startToCloseTimeout: Duration = .seconds(600)

    public struct Input: Codable, Sendable, Equatable {
        public var documentID: String
        public var text: String
        /// The chat model; the worker's default when absent.
        public var model: String?
        /// Longest part sent in one call, in characters (default 24,000, about 6,000 tokens).
        public var maxPartCharacters: Int?
        /// Whether a cached answer to the same request may be used (default true).
        public var useCache: Bool?
        /// Whose share of the OpenAI limits the calls use (a tenant, a project); over the
        /// request\'s `flow-rate-key` header.
        public var rateKey: String?

        public init(documentID: String, text: String, model: String? = nil, maxPartCharacters: Int? = nil, useCache: Bool? = nil) {
            self.documentID = documentID
            self.text = text
            self.model = model
            self.maxPartCharacters = maxPartCharacters
            self.useCache = useCache
        }
    }

    public struct Risk: Codable, Sendable, Equatable {
        public var description: String
        /// low, medium or high.
        public var severity: String
    }

    /// The analysis, in the shape of `Prompts/schemas/document_analysis.json`.
    public struct Analysis: Codable, Sendable, Equatable {
        public var summary: String
        public var themes: [String]
        public var risks: [Risk]
        public var decisions: [String]
        public var openQuestions: [String]
    }

    public struct Output: Codable, Sendable, Equatable {
        public var documentID: String
        public var analysis: Analysis
        public var model: String
        /// How many parts the text was read in (1: one call).
        public var parts: Int
        /// The prompt versions that produced it, e.g. `analyze_document@1`.
        public var promptVersions: [String]
        public var usage: ModelUsage

        public init(documentID: String, analysis: Analysis, model: String, parts: Int, promptVersions: [String], usage: ModelUsage) {
            self.documentID = documentID
            self.analysis = analysis
            self.model = model
            self.parts = parts
            self.promptVersions = promptVersions
            self.usage = usage
        }
    }
}
