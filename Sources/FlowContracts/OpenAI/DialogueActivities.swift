import FlowCore
import Foundation

/// `research_and_synthesize`: questions derived from a topic and its sources, each
/// answered from the sources, then a synthesis.
public enum ResearchAndSynthesize: ActivityDeclaration {
    public static let name = "research_and_synthesize"

    public static let queue = WorkQueue.openai
    /// Three attempts, each with up to two HTTP retries of its own: at most nine calls a step.
    public static var retryPolicy: RetryPolicy { RetryPolicy(maximumAttempts: 3) }

    public static let startToCloseTimeout: Duration = .seconds(900)

    public struct Source: Codable, Sendable, Equatable {
        public var title: String
        public var text: String

        public init(title: String, text: String) {
            self.title = title
            self.text = text
        }
    }

    public struct Input: Codable, Sendable {
        public var topic: String
        public var sources: [Source]
        public var maxQuestions: Int?
        public var model: String?
        public var useCache: Bool?
        /// Whose share of the OpenAI limits the calls use (a tenant, a project); over the
        /// request\'s `flow-rate-key` header.
        public var rateKey: String?


        public init(topic: String, sources: [Source], maxQuestions: Int? = nil, model: String? = nil, useCache: Bool? = nil) {
            self.topic = topic
            self.sources = sources
            self.maxQuestions = maxQuestions
            self.model = model
            self.useCache = useCache
        }
    }

    public struct Answer: Codable, Sendable, Equatable {
        public var question: String
        public var answer: String
        public var sources: [String]

        public init(question: String, answer: String, sources: [String]) {
            self.question = question
            self.answer = answer
            self.sources = sources
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var topic: String
        public var answers: [Answer]
        public var synthesis: String
        public var keyPoints: [String]
        public var gaps: [String]
        public var model: String
        public var promptVersions: [String]
        public var usage: ModelUsage


        public init(topic: String, answers: [Answer], synthesis: String, keyPoints: [String], gaps: [String], model: String, promptVersions: [String], usage: ModelUsage) {
            self.topic = topic
            self.answers = answers
            self.synthesis = synthesis
            self.keyPoints = keyPoints
            self.gaps = gaps
            self.model = model
            self.promptVersions = promptVersions
            self.usage = usage
        }
    }
}

/// `catchball_exchange`: one round of a catchball dialogue: the current proposal (a
/// first one when the conversation is empty), feedback on it, and a revised proposal.
/// The conversation so far travels in the input and comes back longer, so a workflow can
/// run as many rounds as it likes.
public enum CatchballExchange: ActivityDeclaration {
    public static let name = "catchball_exchange"

    public static let queue = WorkQueue.openai
    /// Three attempts, each with up to two HTTP retries of its own: at most nine calls a step.
    public static var retryPolicy: RetryPolicy { RetryPolicy(maximumAttempts: 3) }

    public static let startToCloseTimeout: Duration = .seconds(600)

    public struct Turn: Codable, Sendable, Equatable {
        /// proposal, feedback or revision.
        public var kind: String
        public var content: String

        public init(kind: String, content: String) {
            self.kind = kind
            self.content = content
        }
    }

    public struct Input: Codable, Sendable {
        public var topic: String
        public var context: String?
        public var conversation: [Turn]?
        public var model: String?
        public var useCache: Bool?
        /// Whose share of the OpenAI limits the calls use (a tenant, a project); over the
        /// request\'s `flow-rate-key` header.
        public var rateKey: String?


        public init(topic: String, context: String? = nil, conversation: [Turn]? = nil, model: String? = nil, useCache: Bool? = nil) {
            self.topic = topic
            self.context = context
            self.conversation = conversation
            self.model = model
            self.useCache = useCache
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var round: Int
        public var proposal: String
        public var feedback: String
        public var revisedProposal: String
        public var conversation: [Turn]
        public var model: String
        public var promptVersions: [String]
        public var usage: ModelUsage


        public init(round: Int, proposal: String, feedback: String, revisedProposal: String, conversation: [Turn], model: String, promptVersions: [String], usage: ModelUsage) {
            self.round = round
            self.proposal = proposal
            self.feedback = feedback
            self.revisedProposal = revisedProposal
            self.conversation = conversation
            self.model = model
            self.promptVersions = promptVersions
            self.usage = usage
        }
    }
}

/// `synthesize_wisdom`: a few durable principles distilled from many earlier results,
/// each with the evidence behind it.
public enum SynthesizeWisdom: ActivityDeclaration {
    public static let name = "synthesize_wisdom"

    public static let queue = WorkQueue.openai
    /// Three attempts, each with up to two HTTP retries of its own: at most nine calls a step.
    public static var retryPolicy: RetryPolicy { RetryPolicy(maximumAttempts: 3) }

    public static let startToCloseTimeout: Duration = .seconds(300)

    public struct Insight: Codable, Sendable, Equatable {
        public var source: String
        public var text: String

        public init(source: String, text: String) {
            self.source = source
            self.text = text
        }
    }

    public struct Input: Codable, Sendable {
        public var insights: [Insight]
        public var maxPrinciples: Int?
        public var model: String?
        public var useCache: Bool?
        /// Whose share of the OpenAI limits the calls use (a tenant, a project); over the
        /// request\'s `flow-rate-key` header.
        public var rateKey: String?


        public init(insights: [Insight], maxPrinciples: Int? = nil, model: String? = nil, useCache: Bool? = nil) {
            self.insights = insights
            self.maxPrinciples = maxPrinciples
            self.model = model
            self.useCache = useCache
        }
    }

    public struct Evidence: Codable, Sendable, Equatable {
        public var source: String
        public var observation: String

        public init(source: String, observation: String) {
            self.source = source
            self.observation = observation
        }
    }

    public struct Principle: Codable, Sendable, Equatable {
        public var principle: String
        public var evidence: [Evidence]

        public init(principle: String, evidence: [Evidence]) {
            self.principle = principle
            self.evidence = evidence
        }
    }

    public struct Output: Codable, Sendable, Equatable {
        public var principles: [Principle]
        public var model: String
        public var promptVersions: [String]
        public var usage: ModelUsage


        public init(principles: [Principle], model: String, promptVersions: [String], usage: ModelUsage) {
            self.principles = principles
            self.model = model
            self.promptVersions = promptVersions
            self.usage = usage
        }
    }
}
