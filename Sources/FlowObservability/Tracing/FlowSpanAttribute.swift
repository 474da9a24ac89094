import Tracing

/// Span attribute names: OpenTelemetry's messaging and GenAI conventions where they have
/// one, `flow.*` for the rest. docs/observability.md lists which span carries which.
public enum FlowSpanAttribute {
    public static let messagingSystem = "messaging.system"
    public static let destination = "messaging.destination.name"
    public static let operationName = "messaging.operation.name"
    public static let operationType = "messaging.operation.type"
    public static let messageID = "messaging.message.id"
    public static let conversationID = "messaging.message.conversation_id"
    public static let activity = "flow.activity.name"
    public static let attempt = "flow.activity.attempt"
    public static let workflowID = "flow.workflow.id"
    public static let workflowName = "flow.workflow.name"
    public static let stepKey = "flow.step.key"
    public static let outcome = "flow.outcome"
    public static let errorType = "error.type"
    public static let requestModel = "gen_ai.request.model"
    public static let genAIOperation = "gen_ai.operation.name"
    public static let genAISystem = "gen_ai.system"
    public static let inputTokens = "gen_ai.usage.input_tokens"
    public static let outputTokens = "gen_ai.usage.output_tokens"
    public static let httpMethod = "http.request.method"
    public static let httpStatus = "http.response.status_code"
    public static let url = "url.full"
    public static let serverAddress = "server.address"
    public static let trainingJob = "flow.training.job_id"
    public static let trainingModel = "flow.training.model"
    public static let trainingSteps = "flow.training.steps"

    /// `messaging.system` for every message span.
    public static let rabbitMQ = "rabbitmq"
}

extension Span {
    /// The messaging attributes of a span that sends (`send`) or handles (`process`) one
    /// message, as OpenTelemetry's messaging conventions name them.
    public func setMessagingAttributes(operation: String, destination: String, messageID: String) {
        updateAttributes { attributes in
            attributes[FlowSpanAttribute.messagingSystem] = FlowSpanAttribute.rabbitMQ
            attributes[FlowSpanAttribute.operationName] = operation
            attributes[FlowSpanAttribute.operationType] = operation
            attributes[FlowSpanAttribute.destination] = destination
            attributes[FlowSpanAttribute.messageID] = messageID
        }
    }
}
