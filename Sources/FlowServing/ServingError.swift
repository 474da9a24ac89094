import Foundation
import HTTPTypes

/// A request the server refuses, in the OpenAI API's error shape:
/// `{"error": {"message", "type", "param", "code"}}` with the API's status for it, so that
/// any OpenAI client (ours, the official ones) reads it as it reads the real API's.
public struct ServingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds to wait before asking again (`Retry-After`), for a full queue.
    public var retryAfter: Int?

    public init(status: HTTPResponse.Status, message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { message }

    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> ServingError {
        ServingError(status: .badRequest, message: message, param: param, code: code)
    }

    static func unknownModel(_ name: String, served: [String]) -> ServingError {
        ServingError(
            status: .notFound, message: "The model `\(name)` does not exist or you do not have access to it. This server serves: \(served.joined(separator: ", ")).",
            param: "model", code: "model_not_found"
        )
    }
}
