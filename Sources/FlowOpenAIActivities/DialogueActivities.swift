import FlowContracts
import FlowCore
import FlowOpenAI
import FlowPostgres
import FlowRuntime
import Foundation

/// Runs ``ResearchAndSynthesize`` (`FlowContracts`).
public struct ResearchAndSynthesizeActivity: DeclaredActivity {
    public typealias Declaration = ResearchAndSynthesize
    public typealias Input = ResearchAndSynthesize.Input
    public typealias Output = ResearchAndSynthesize.Output
    typealias Source = ResearchAndSynthesize.Source
    typealias Answer = ResearchAndSynthesize.Answer

    struct Questions: Decodable { var questions: [String] }

    struct SourcedAnswer: Decodable { var answer: String; var sources: [String] }

    struct Synthesis: Decodable {
        var synthesis: String
        var keyPoints: [String]
        var gaps: [String]
    }

    let client: OpenAIClient

    public init(client: OpenAIClient) { self.client = client }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        guard !input.topic.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "'topic' is empty") }
        guard !input.sources.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "give at least one source ({\"title\": ..., \"text\": ...})") }
        let maximum = input.maxQuestions ?? 5
        guard (1...20).contains(maximum) else { throw ActivityFailure.nonRetryable(.invalidInput, "max_questions must be from 1 to 20, got \(maximum)") }
        let calls = ModelCalls(client: client, model: input.model, useCache: input.useCache, rateKey: input.rateKey, context: context)
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

/// Runs ``CatchballExchange`` (`FlowContracts`).
public struct CatchballExchangeActivity: DeclaredActivity {
    public typealias Declaration = CatchballExchange
    public typealias Input = CatchballExchange.Input
    public typealias Output = CatchballExchange.Output
    typealias Turn = CatchballExchange.Turn

    struct Proposal: Codable { var proposal: String; var rationale: String; var successMeasures: [String]
    }

    struct Feedback: Codable { var strengths: [String]; var concerns: [String]; var suggestions: [String] }

    let client: OpenAIClient

    public init(client: OpenAIClient) { self.client = client }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        guard !input.topic.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "'topic' is empty") }
        let calls = ModelCalls(client: client, model: input.model, useCache: input.useCache, rateKey: input.rateKey, context: context)
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

/// Runs ``SynthesizeWisdom`` (`FlowContracts`).
public struct SynthesizeWisdomActivity: DeclaredActivity {
    public typealias Declaration = SynthesizeWisdom
    public typealias Input = SynthesizeWisdom.Input
    public typealias Output = SynthesizeWisdom.Output
    typealias Insight = SynthesizeWisdom.Insight
    typealias Evidence = SynthesizeWisdom.Evidence
    typealias Principle = SynthesizeWisdom.Principle

    struct Principles: Decodable { var principles: [Principle] }

    let client: OpenAIClient

    public init(client: OpenAIClient) { self.client = client }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        guard !input.insights.isEmpty else { throw ActivityFailure.nonRetryable(.invalidInput, "give at least one insight ({\"source\": ..., \"text\": ...})") }
        let maximum = input.maxPrinciples ?? 5
        guard (1...20).contains(maximum) else { throw ActivityFailure.nonRetryable(.invalidInput, "max_principles must be from 1 to 20, got \(maximum)") }
        let calls = ModelCalls(client: client, model: input.model, useCache: input.useCache, rateKey: input.rateKey, context: context)
        let insights = input.insights.map { "- [\($0.source)] \($0.text)" }.joined(separator: "\n")
        let answer = try await calls.ask(try PromptLibrary.prompt("synthesize_wisdom"), ["insights": insights, "max_principles": "\(maximum)"], as: Principles.self)
        return Output(principles: Array(answer.principles.prefix(maximum)), model: calls.model, promptVersions: calls.promptVersions, usage: calls.usage)
    }
}

/// The OpenAI actor's activities, ready to register in its worker.
public enum OpenAIActivities {
    public static func registry(client: OpenAIClient) -> ActivityRegistry {
        var registry = ActivityRegistry(contract: OpenAIContracts.all)
        registry.register(AnalyzeDocumentContentActivity(client: client))
        registry.register(ResearchAndSynthesizeActivity(client: client))
        registry.register(CatchballExchangeActivity(client: client))
        registry.register(SynthesizeWisdomActivity(client: client))
        return registry
    }
}

extension OpenAIActivities {
    /// `flow worker openai`. API calls mostly wait on the network or in the rate limiter,
    /// so many run at once: the limiter can only serve priorities and rate keys fairly
    /// among the requests it holds, so the prefetch reaches deep into a backlog.
    public static let profile = ActorProfile(
        queue: .openai, summary: "chat API calls", defaultConcurrency: 256, metricsPort: 9466,
        check: { environment in
            let configuration = try OpenAIConfiguration.fromEnvironment(environment.variables, dataFolder: environment.dataFolder)
            return ["OpenAI: \(configuration.baseURL), model \(configuration.defaultModel), key \(configuration.apiKey == nil ? "not set" : "set")"]
        },
        activities: { environment in
            let configuration = try OpenAIConfiguration.fromEnvironment(environment.variables, dataFolder: environment.dataFolder)
            if configuration.requiresKey, configuration.apiKey == nil {
                environment.logger.warning("OPENAI_API_KEY is not set: every activity fails with MissingAPIKey and waits in the dead-letter queue until the key is set and it is replayed")
            }
            // Copies on several hosts book their spend in one PostgreSQL database; copies on
            // one host share the SQLite book in the data folder.
            var spendStore: (any SpendStore)?
            if let url = environment.variables["FLOW_OPENAI_SPEND_STORE"], !url.isEmpty {
                do {
                    spendStore = try await PostgresSpendBook.open(try PostgresStoreLocation(url: url), logger: environment.logger)
                } catch {
                    throw ActivityFailure.nonRetryable(.invalidConfiguration, "FLOW_OPENAI_SPEND_STORE: \(error)")
                }
            }
            let client = try OpenAIClient(configuration: configuration, spendStore: spendStore, metrics: environment.metrics, logger: environment.logger)
            let peers = PeerCount(transport: try environment.requireTransport(), queue: environment.names.queue(.openai), limiter: client.limiter, logger: environment.logger)
            return ActorActivities(registry: registry(client: client), prepareScrape: { await client.ledger.refreshGauges() }, services: [peers])
        }
    )
}
