/// What went wrong talking to an OpenAI-compatible server: the client's own error. The
/// OpenAI actor maps it to the failure catalogue at its activities' boundary
/// (`ActivityFailure(_:)` in `FlowOpenAIActivities`), and only there; other users of the
/// client handle it as they see fit.
public struct OpenAIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable, CaseIterable {
        case missingAPIKey = "MissingAPIKey"
        case unauthorized = "Unauthorized"
        case forbidden = "Forbidden"
        case notFound = "NotFound"
        case badRequest = "BadRequest"
        case rateLimited = "RateLimited"
        case serverBusy = "ServerBusy"
        case serverError = "ServerError"
        case unexpectedStatus = "UnexpectedStatus"
        case malformedResponse = "MalformedResponse"
        case timeout = "Timeout"
        case connectionFailed = "ConnectionFailed"
        case budgetExceeded = "BudgetExceeded"
        case spendBookUnavailable = "SpendBookUnavailable"
        case invalidConfiguration = "InvalidConfiguration"
    }

    public var code: Code
    public var message: String
    /// Whether the same call may succeed if made again later.
    public var retryable: Bool

    public init(_ code: Code, _ message: String, retryable: Bool) {
        self.code = code
        self.message = message
        self.retryable = retryable
    }

    static func retryable(_ code: Code, _ message: String) -> OpenAIError { OpenAIError(code, message, retryable: true) }
    static func nonRetryable(_ code: Code, _ message: String) -> OpenAIError { OpenAIError(code, message, retryable: false) }

    /// The code's name, which is also the failure type the OpenAI actor reports.
    public var type: String { code.rawValue }

    public var description: String { "\(type): \(message)" }
}
