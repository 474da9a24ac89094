import FlowCore
import FlowOpenAI
import FlowRuntime
import Foundation

/// `research_and_synthesize`: questions derived from a topic and its sources, each
/// answered from the sources, then a synthesis.
public struct ResearchAndSynthesize: Activity {
    public static let name = "research_and_synthesize"
    public static let queue = WorkQueue.openai
    public static let startToCloseTimeout: Duration = .seconds(900)

    public struct Source: Codable, Sendable, Equatable {
        public var title: String
        public var text: String
    }

    public struct Input: Codable, Sendable {
        public var topic: String
        public var sources: [Source]
        public var maxQuestions: Int?
        public var model: String?
        public var useCache: Bool?

        enum CodingKeys: String, CodingKey {
            case topic, sources
            case maxQuestions = "max_questions"
            case model
            case useCache = "use_cache"
        }
    }

    public struct Answer: Codable, Sendable, Equatable {
        public var question: String
        public var answer: String
        public var sources: [String]
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

        enum CodingKeys: String, CodingKey {
            case topic, answers, synthesis
            case keyPoints = "key_points"
            case gaps, model
            case promptVersions = "prompt_versions"
            case usage
        }
    }

    struct Questions: Decodable { var questions: [String] }
    struct SourcedAnswer: Decodable { var answer: String; var sources: [String] }
    struct Synthesis: Decodable {
        var synthesis: String
        var keyPoints: [String]
        var gaps: [String]
        enum CodingKeys: String, CodingKey {
            case synthesis
            case keyPoints = "key_points"
            case gaps
        }
    }

    let client: OpenAIClient
    public init(client: OpenAIClient) { self.client = client }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        guard !input.topic.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "'topic' is empty") }
        guard !input.sources.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "give at least one source ({\"title\": ..., \"text\": ...})") }
        let maximum = input.maxQuestions ?? 5
        guard (1...20).contains(maximum) else { throw ActivityFailure.nonRetryable(.invalidInput, "max_questions must be from 1 to 20, got \(maximum)") }
        let calls = ModelCalls(client: client, model: input.model, useCache: input.useCache)
        let planned = try await calls.ask(
            try PromptLibrary.prompt("research_questions"),
            ["topic": input.topic, "source_titles": input.sources.map(\.title).joined(separator: "; "), "max_questions": "\(maximum)"],
            as: Questions.self
        )
        let sourcesText = input.sources.map { "## \($0.title)\n\($0.text)" }.joined(separator: "\n\n")
        let answerPrompt = try PromptLibrary.prompt("research_answer")
        var answers: [Answer] = []
        for question in planned.questions.prefix(maximum) {
            let answered = try await calls.ask(answerPrompt, ["question": question, "sources": sourcesText], as: SourcedAnswer.self)
            answers.append(Answer(question: question, answer: answered.answer, sources: answered.sources))
            await context.heartbeat(["answered": answers.count, "questions": min(maximum, planned.questions.count)])
        }
        let synthesis = try await calls.ask(try PromptLibrary.prompt("research_synthesis"), ["topic": input.topic, "answers": answers.promptJSON], as: Synthesis.self)
        return Output(
            topic: input.topic, answers: answers, synthesis: synthesis.synthesis, keyPoints: synthesis.keyPoints, gaps: synthesis.gaps,
            model: calls.model, promptVersions: calls.promptVersions, usage: calls.usage
        )
    }
}

/// `catchball_exchange`: one round of a catchball dialogue: the current proposal (a
/// first one when the conversation is empty), feedback on it, and a revised proposal.
/// The conversation so far travels in the input and comes back longer, so a workflow can
/// run as many rounds as it likes.
public struct CatchballExchange: Activity {
    public static let name = "catchball_exchange"
    public static let queue = WorkQueue.openai
    public static let startToCloseTimeout: Duration = .seconds(600)

    public struct Turn: Codable, Sendable, Equatable {
        /// proposal, feedback or revision.
        public var kind: String
        public var content: String
    }

    public struct Input: Codable, Sendable {
        public var topic: String
        public var context: String?
        public var conversation: [Turn]?
        public var model: String?
        public var useCache: Bool?

        enum CodingKeys: String, CodingKey {
            case topic, context, conversation, model
            case useCache = "use_cache"
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

        enum CodingKeys: String, CodingKey {
            case round, proposal, feedback
            case revisedProposal = "revised_proposal"
            case conversation, model
            case promptVersions = "prompt_versions"
            case usage
        }
    }

    struct Proposal: Codable { var proposal: String; var rationale: String; var successMeasures: [String]
        enum CodingKeys: String, CodingKey { case proposal, rationale; case successMeasures = "success_measures" }
    }
    struct Feedback: Codable { var strengths: [String]; var concerns: [String]; var suggestions: [String] }

    let client: OpenAIClient
    public init(client: OpenAIClient) { self.client = client }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        guard !input.topic.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "'topic' is empty") }
        let calls = ModelCalls(client: client, model: input.model, useCache: input.useCache)
        var conversation = input.conversation ?? []
        let proposal: String
        if let last = conversation.last(where: { $0.kind == "revision" || $0.kind == "proposal" }) {
            proposal = last.content
        } else {
            let first = try await calls.ask(try PromptLibrary.prompt("catchball_propose"), ["topic": input.topic, "context": input.context ?? "(none given)"], as: Proposal.self)
            proposal = first.promptJSON
            conversation.append(Turn(kind: "proposal", content: proposal))
        }
        let transcript = conversation.map { "[\($0.kind)] \($0.content)" }.joined(separator: "\n\n")
        let feedback = try await calls.ask(try PromptLibrary.prompt("catchball_feedback"), ["topic": input.topic, "conversation": transcript, "proposal": proposal], as: Feedback.self)
        conversation.append(Turn(kind: "feedback", content: feedback.promptJSON))
        let revised = try await calls.ask(try PromptLibrary.prompt("catchball_revise"), ["topic": input.topic, "proposal": proposal, "feedback": feedback.promptJSON], as: Proposal.self)
        conversation.append(Turn(kind: "revision", content: revised.promptJSON))
        return Output(
            round: conversation.filter { $0.kind == "feedback" }.count, proposal: proposal, feedback: feedback.promptJSON,
            revisedProposal: revised.promptJSON, conversation: conversation, model: calls.model, promptVersions: calls.promptVersions, usage: calls.usage
        )
    }
}

/// `synthesize_wisdom`: a few durable principles distilled from many earlier results,
/// each with the evidence behind it.
public struct SynthesizeWisdom: Activity {
    public static let name = "synthesize_wisdom"
    public static let queue = WorkQueue.openai
    public static let startToCloseTimeout: Duration = .seconds(300)

    public struct Insight: Codable, Sendable, Equatable {
        public var source: String
        public var text: String
    }

    public struct Input: Codable, Sendable {
        public var insights: [Insight]
        public var maxPrinciples: Int?
        public var model: String?
        public var useCache: Bool?

        enum CodingKeys: String, CodingKey {
            case insights
            case maxPrinciples = "max_principles"
            case model
            case useCache = "use_cache"
        }
    }

    public struct Evidence: Codable, Sendable, Equatable {
        public var source: String
        public var observation: String
    }

    public struct Principle: Codable, Sendable, Equatable {
        public var principle: String
        public var evidence: [Evidence]
    }

    public struct Output: Codable, Sendable, Equatable {
        public var principles: [Principle]
        public var model: String
        public var promptVersions: [String]
        public var usage: ModelUsage

        enum CodingKeys: String, CodingKey {
            case principles, model
            case promptVersions = "prompt_versions"
            case usage
        }
    }

    struct Principles: Decodable { var principles: [Principle] }

    let client: OpenAIClient
    public init(client: OpenAIClient) { self.client = client }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        guard !input.insights.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "give at least one insight ({\"source\": ..., \"text\": ...})") }
        let maximum = input.maxPrinciples ?? 5
        guard (1...20).contains(maximum) else { throw ActivityFailure.nonRetryable(.invalidInput, "max_principles must be from 1 to 20, got \(maximum)") }
        let calls = ModelCalls(client: client, model: input.model, useCache: input.useCache)
        let insights = input.insights.map { "- [\($0.source)] \($0.text)" }.joined(separator: "\n")
        let answer = try await calls.ask(try PromptLibrary.prompt("synthesize_wisdom"), ["insights": insights, "max_principles": "\(maximum)"], as: Principles.self)
        return Output(principles: Array(answer.principles.prefix(maximum)), model: calls.model, promptVersions: calls.promptVersions, usage: calls.usage)
    }
}

/// The OpenAI actor's activities, ready to register in its worker.
public enum OpenAIActivities {
    public static let declarations: [any ActivityDeclaration.Type] = [
        AnalyzeDocumentContentActivity.self, ResearchAndSynthesize.self, CatchballExchange.self, SynthesizeWisdom.self,
    ]

    public static func registry(client: OpenAIClient) -> ActivityRegistry {
        var registry = ActivityRegistry()
        registry.register(AnalyzeDocumentContentActivity(client: client))
        registry.register(ResearchAndSynthesize(client: client))
        registry.register(CatchballExchange(client: client))
        registry.register(SynthesizeWisdom(client: client))
        return registry
    }
}
