import FlowContracts
import FlowCore
import FlowML
import FlowRuntime
import Foundation

/// `evaluate_model`: loss and perplexity of a base model with an adapter on a dataset.
public struct EvaluateModelActivity: DeclaredActivity {
    public typealias Declaration = EvaluateModel

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        try await ComputeThread.run { [dataFolder] in
            let (model, tokenizer) = try MLInputs.model(input.baseModel, in: dataFolder)
            let examples = try MLInputs.examples(input.dataset, in: dataFolder, tokenizer: tokenizer, maximumLength: 512).examples
            let adapter = try input.adapterPath.map { try MLInputs.adapter($0, in: dataFolder) }
            do {
                let base = try model.evaluate(examples)
                let result = try adapter.map { try model.evaluate(examples, adapter: $0) } ?? base
                return Output(jobID: input.jobID, evalLoss: result.loss, perplexity: result.perplexity, samples: examples.count, baseEvalLoss: base.loss, basePerplexity: base.perplexity)
            } catch let error as ModelError {
                throw ActivityFailure.nonRetryable(.invalidEvaluationRequest, error.message)
            }
        }
    }
}
