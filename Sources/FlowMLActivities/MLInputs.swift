import FlowCore
import FlowML
import FlowRuntime
import Foundation

/// Reading the ML activities' inputs from the data folder, with errors that name the problem.
enum MLInputs {
    static func model(_ path: String, in dataFolder: DataFolder) throws -> (LlamaModel, ModelTokenizer) {
        let folder = try dataFolder.resolve(path)
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path) else {
            throw ActivityFailure.nonRetryable(.modelNotFound, "no model folder with a config.json at \(path) in the data folder")
        }
        do {
            return (try LlamaModel(folder: folder), try ModelTokenizer(folder: folder))
        } catch let error as ModelError {
            throw ActivityFailure.nonRetryable(.invalidModel, "\(path): \(error.message)")
        } catch let error as SafeTensorsError {
            throw ActivityFailure.nonRetryable(.invalidModel, "\(path): \(error.message)")
        } catch let error as TokenizerError {
            throw ActivityFailure.nonRetryable(.invalidModel, "\(path): the tokenizer: \(error.message)")
        } catch let error as TemplateError {
            throw ActivityFailure.nonRetryable(.invalidModel, "\(path)/tokenizer_config.json: \(error.message)")
        }
    }

    static func examples(_ dataset: String, in dataFolder: DataFolder, tokenizer: ModelTokenizer, maximumLength: Int) throws -> TrainingData.TrainingSet {
        let file = try datasetFile(dataset, in: dataFolder)
        do {
            return try TrainingData.load(file, tokenizer: tokenizer, maximumLength: maximumLength)
        } catch let error as ModelError {
            throw ActivityFailure.nonRetryable(.invalidDataset, "\(dataset): \(error.message)")
        }
    }

    private static func datasetFile(_ dataset: String, in dataFolder: DataFolder) throws -> URL {
        if dataset.hasPrefix("sha256:") { return try BlobStore(folder: dataFolder.blobs).path(of: dataset) }
        return try dataFolder.resolve(dataset)
    }

    /// A PEFT adapter folder in the data folder.
    static func adapter(_ path: String, in dataFolder: DataFolder) throws -> LoRAAdapter {
        let folder = try dataFolder.resolve(path)
        do {
            return try LoRAAdapter(folder: folder)
        } catch let error as ModelError {
            throw ActivityFailure.nonRetryable(.invalidAdapter, "\(path): \(error.message)")
        } catch let error as SafeTensorsError {
            throw ActivityFailure.nonRetryable(.invalidAdapter, "\(path): \(error.message)")
        }
    }

    /// The trainer's settings: `training` and `lora` objects with Transformers' and PEFT's names.
    static func settings(lora: JSONText?, training: JSONText?) throws -> TrainingSettings {
        var merged: [String: JSONValue] = [:]
        for part in [training, lora].compactMap({ $0 }) {
            guard let object = part.value.objectValue else {
                throw ActivityFailure.nonRetryable(.invalidInput, "'lora' and 'training' must be JSON objects")
            }
            merged.merge(object) { _, new in new }
        }
        do {
            var settings = try JSONText(.object(merged)).decode(TrainingSettings.self)
            if merged["max_steps"] == nil { settings.maximumSteps = 30 }
            return settings
        } catch let error as DecodingError {
            throw ActivityFailure.nonRetryable(.invalidInput, "the training settings do not decode: \(FlowJSON.describe(error))")
        }
    }
}
