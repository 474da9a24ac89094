import FlowCore

/// A document the extractors cannot read. The default actor's activities map it to the
/// failure catalogue where they call the extractors, and only there.
public struct DocumentError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case corrupt = "CorruptDocument"
        case unsupportedFormat = "UnsupportedFormat"
        case missingDependency = "MissingDependency"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

extension ActivityFailure {
    /// A document that cannot be read fails for good: reading it again gives the same answer.
    init(_ error: DocumentError) {
        self = .nonRetryable(Kind(rawValue: error.code.rawValue), error.message)
    }
}
