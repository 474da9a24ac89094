import FlowCore
import FlowML
import Foundation
import Synchronization

/// What the server serves: one base model, loaded once, and LoRA adapters over it, each
/// answering under its own model name (as vLLM serves adapters). Adapters come and go while
/// it runs (`/v1/load_lora_adapter`); the base's weights are shared by all.
public final class ModelCatalog: Sendable {
    /// The name the base model answers to.
    public let baseName: String
    let model: LlamaModel
    let tokenizer: ModelTokenizer
    let stopTokens: Set<Int>
    /// The model's context: prompt and completion together (``ModelConfiguration/contextLength``).
    let contextLength: Int
    /// Each token's bytes, by id (nil for a special token): what constrained decoding
    /// checks candidates against.
    let tokenBytes: [[UInt8]?]
    let created = Int(Date().timeIntervalSince1970)
    private let adapters = Mutex<[String: LoRAAdapter]>([:])

    /// Loads the model folder (its `tokenizer.json` and `config.json` too). `name`: what
    /// requests call the base; its folder's name by default.
    public init(folder: URL, name: String? = nil) throws {
        model = try LlamaModel(folder: folder)
        tokenizer = try ModelTokenizer(folder: folder)
        stopTokens = LlamaModel.endOfSequenceTokens(in: folder)
        contextLength = model.configuration.contextLength
        baseName = name ?? folder.standardizedFileURL.lastPathComponent
        let tokenizer = self.tokenizer.tokenizer
        tokenBytes = (0..<max(tokenizer.idCount, model.configuration.vocabularySize)).map { tokenizer.bytes(of: $0) }
    }

    /// Serves the PEFT adapter in `folder` as model `name` (replacing one of that name).
    public func addAdapter(named name: String, folder: URL) throws {
        guard name != baseName else { throw ServingError.invalid("`\(name)` is the base model's name: give the adapter another", param: "lora_name") }
        let adapter: LoRAAdapter
        do {
            adapter = try LoRAAdapter(folder: folder)
        } catch {
            throw ServingError.invalid("cannot load the adapter in \(folder.path): \(error)", param: "lora_path")
        }
        adapters.withLock { $0[name] = adapter }
    }

    /// Stops serving adapter `name`; false when there was none.
    public func removeAdapter(named name: String) -> Bool {
        adapters.withLock { $0.removeValue(forKey: name) != nil }
    }

    /// Every model name served: the base first, then the adapters by name.
    public var names: [String] { [baseName] + adapters.withLock { $0.keys.sorted() } }

    /// The adapter a request's `model` names: nil for the base.
    func adapter(for name: String) throws(ServingError) -> LoRAAdapter? {
        if name == baseName { return nil }
        guard let adapter = adapters.withLock({ $0[name] }) else { throw ServingError.unknownModel(name, served: names) }
        return adapter
    }

    /// Checks that `prompt` and up to `completion` more tokens fit the model's context, in
    /// the API's words.
    func checkContext(prompt: Int, completion: Int) throws(ServingError) {
        guard prompt + completion <= contextLength else {
            throw ServingError.invalid(
                "This model's maximum context length is \(contextLength) tokens. However, you requested \(prompt + completion) tokens (\(prompt) in the messages, \(completion) in the completion). Please reduce the length of the messages or completion.",
                param: "messages", code: "context_length_exceeded"
            )
        }
    }
}
