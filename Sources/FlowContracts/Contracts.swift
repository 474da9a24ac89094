import FlowCore

/// The contracts of the actors: for each queue, the activities its worker runs, with
/// their names, inputs, outputs, timeouts and retry policies. Callers (workflows, the
/// command line, other systems' Swift code) depend on this module alone; each actor's
/// module implements its contract, and its registry refuses to start with an activity
/// missing or one the contract does not list.

/// `default-queue`: documents, storage, health, cleanup, delegation of training.
public enum DefaultContracts {
    public static let all: [any ActivityDeclaration.Type] = [
        ProcessDocumentUpload.self, ParseDocument.self, HealthCheck.self, CleanupStorage.self,
        StoragePut.self, StorageGet.self, StorageList.self, StorageDelete.self, DelegateTraining.self, Echo.self,
    ]
}

/// `ml-queue`: LoRA training jobs, evaluation and generation on local models.
public enum MLContracts {
    public static let all: [any ActivityDeclaration.Type] = [
        TrainOrganizationalModel.self, EvaluateModel.self, GenerateText.self, ListTrainingJobs.self, GetTrainingJob.self, CancelTrainingJob.self,
    ]
}

/// `openai-queue`: calls to OpenAI-compatible chat APIs.
public enum OpenAIContracts {
    public static let all: [any ActivityDeclaration.Type] = [
        AnalyzeDocumentContent.self, ResearchAndSynthesize.self, CatchballExchange.self, SynthesizeWisdom.self,
    ]
}

/// Every actor's contract, for code that calls activities by name.
public enum AllContracts {
    public static var all: [any ActivityDeclaration.Type] { DefaultContracts.all + MLContracts.all + OpenAIContracts.all }
}
