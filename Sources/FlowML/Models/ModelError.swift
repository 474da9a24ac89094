/// Why a model folder could not be loaded or run.
public struct ModelError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}
