import FlowCore
import FlowDefaultActivities
import FlowML
import FlowRuntime
import Foundation

/// `evaluate_model`: loss and perplexity of a base model with an adapter on a dataset.
public struct EvaluateModelActivity: Activity {
    public typealias Input = EvaluateModel.Input
    public typealias Output = EvaluateModel.Output
    public static let name = EvaluateModel.name
    public static let queue = EvaluateModel.queue
    public static let startToCloseTimeout = EvaluateModel.startToCloseTimeout

    let dataFolder: DataFolder

    public init(dataFolder: DataFolder) { self.dataFolder = dataFolder }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        let (model, tokenizer) = try MLInputs.model(input.baseModel, in: dataFolder)
        let examples = try MLInputs.examples(input.dataset, in: dataFolder, tokenizer: tokenizer, maximumLength: 512)
        let adapterFolder = try dataFolder.resolve(input.adapterPath)
        do {
            let adapter = try LoRAAdapter(folder: adapterFolder)
            let result = try model.evaluate(examples, adapter: adapter)
            return Output(jobID: input.jobID, evalLoss: result.loss, perplexity: result.perplexity, samples: examples.count)
        } catch let error as ModelError {
            throw ActivityFailure.nonRetryable("InvalidEvaluationRequest", error.message)
        }
    }
}
