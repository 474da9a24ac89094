import FlowTransport
import FlowContracts
import FlowCore
import FlowRuntime
import Foundation

/// Runs ``DelegateTraining`` (`FlowContracts`).
public struct DelegateTrainingActivity: DeclaredActivity {
    public typealias Declaration = DelegateTraining
    public typealias Input = DelegateTraining.Input
    public typealias Output = DelegateTraining.Output

    let transport: any MessageTransport

    let names: TopologyNames

    let dataFolder: DataFolder

    public init(transport: any MessageTransport, names: TopologyNames, dataFolder: DataFolder) {
        self.transport = transport
        self.names = names
        self.dataFolder = dataFolder
    }

    public func run(_ input: Input, context: ActivityContext) async throws -> Output {
        guard !input.jobID.isEmpty, input.jobID.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ActivityFailure.nonRetryable(.invalidInput, "job_id must be non-empty letters, digits, '-', '_' or '.', got '\(input.jobID)'")
        }
        let model = try dataFolder.resolve(input.baseModel)
        guard FileManager.default.fileExists(atPath: model.appendingPathComponent("config.json").path) else {
            throw ActivityFailure.nonRetryable(.modelNotFound, "base_model '\(input.baseModel)' has no config.json in the data folder: put a Hugging Face model folder there")
        }
        if input.dataset.hasPrefix("sha256:") {
            _ = try BlobStore(folder: dataFolder.blobs).path(of: input.dataset)
            guard (try? BlobStore(folder: dataFolder.blobs).get(input.dataset)) != nil else {
                throw ActivityFailure.nonRetryable(.datasetNotFound, "dataset blob \(input.dataset) is not in the store")
            }
        } else {
            let dataset = try dataFolder.resolve(input.dataset)
            guard FileManager.default.fileExists(atPath: dataset.path) else {
                throw ActivityFailure.nonRetryable(.datasetNotFound, "dataset '\(input.dataset)' does not exist in the data folder")
            }
        }

        let messageID = "training-job-\(input.jobID)"
        var headers: FieldTable = [FlowProtocol.Header.protocolVersion: .int(FlowProtocol.version)]
        if let workflowID = context.workflowID { headers[FlowProtocol.Header.workflowID] = .string(workflowID) }
        let properties = AMQPProperties(
            contentType: FlowProtocol.contentType, headers: headers, deliveryMode: 2, correlationID: messageID,
            replyTo: input.replyTo, messageID: messageID, timestamp: UInt64(Date().timeIntervalSince1970), type: Declaration.trainingActivity
        )
        var body = input
        body.replyTo = nil
        try await transport.publish(
            AMQPMessage(exchange: names.activitiesExchange, routingKey: names.queue(.ml), properties: properties, body: try FlowJSON.encodeBytes(body))
        )
        return Output(jobID: input.jobID, queue: names.queue(.ml), messageID: messageID)
    }
}
