extension ActivityFailure {
    /// The catalogue of failure types: the stable names in a reply's `error.type` that
    /// programs switch on, in the style of swift-service-lifecycle's
    /// `ServiceGroupError.Code`. A struct, not an enum, so that an application can add
    /// kinds of its own (`static let quotaExceeded = Kind(rawValue: "QuotaExceeded")` in an
    /// extension) without breaking anyone's `switch`. docs/workers.md has the table.
    public struct Kind: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        // MARK: Any activity

        /// The input does not decode, or a field is missing or out of range. (not retryable)
        public static let invalidInput = Kind(rawValue: "InvalidInput")
        /// An attempt ran longer than the activity's start-to-close timeout. (retryable)
        public static let startToCloseTimeout = Kind(rawValue: "StartToCloseTimeout")
        /// The request's deadline (`flow-deadline`) passed before it could run. (not retryable)
        public static let deadlineExceeded = Kind(rawValue: "DeadlineExceeded")
        /// The work was cancelled on request; answered, not dead-lettered. (not retryable)
        public static let cancelled = Kind(rawValue: "Cancelled")
        /// The worker's activity store could not be read or written. (retryable)
        public static let storeUnavailable = Kind(rawValue: "StoreUnavailable")

        // MARK: Messages a worker cannot take (docs/protocol.md)

        /// No activity of that name is registered on this queue. (not retryable)
        public static let unknownActivity = Kind(rawValue: "UnknownActivity")
        /// The message names no activity (`type` property or `flow-activity` header). (not retryable)
        public static let missingActivityName = Kind(rawValue: "MissingActivityName")
        /// The message has no id, which is its idempotency key. (not retryable)
        public static let missingMessageID = Kind(rawValue: "MissingMessageID")
        /// A `flow-*` header has the wrong type or an out-of-range value; the reason names it. (not retryable)
        public static let invalidHeader = Kind(rawValue: "InvalidHeader")
        /// The body is not `application/json`. (not retryable)
        public static let unsupportedContentType = Kind(rawValue: "UnsupportedContentType")
        /// The message speaks a protocol version this worker does not. (not retryable)
        public static let unsupportedProtocol = Kind(rawValue: "UnsupportedProtocol")
        /// The body is not JSON. (not retryable)
        public static let malformedJSON = Kind(rawValue: "MalformedJSON")

        // MARK: Documents and storage (default actor)

        /// A document in a format the actor does not read. (not retryable)
        public static let unsupportedFormat = Kind(rawValue: "UnsupportedFormat")
        /// A document that cannot be parsed (a broken DOCX or PDF). (not retryable)
        public static let corruptDocument = Kind(rawValue: "CorruptDocument")
        /// No document at that path or blob id. (not retryable)
        public static let documentNotFound = Kind(rawValue: "DocumentNotFound")
        /// A blob id that is not `sha256:` and 64 hex digits. (not retryable)
        public static let invalidBlobID = Kind(rawValue: "InvalidBlobID")
        /// No blob with that id. (not retryable)
        public static let blobNotFound = Kind(rawValue: "BlobNotFound")
        /// A path that is empty or not relative. (not retryable)
        public static let invalidPath = Kind(rawValue: "InvalidPath")
        /// A path that leaves the data folder. (not retryable)
        public static let pathOutsideDataFolder = Kind(rawValue: "PathOutsideDataFolder")
        /// Writing to the data folder failed (a full disk, say). (retryable)
        public static let storageWriteFailed = Kind(rawValue: "StorageWriteFailed")
        /// A program the activity needs is not installed (pdftotext). (not retryable)
        public static let missingDependency = Kind(rawValue: "MissingDependency")
        /// No dataset at that path. (not retryable)
        public static let datasetNotFound = Kind(rawValue: "DatasetNotFound")
        /// No model folder (with a config.json) at that path. (not retryable)
        public static let modelNotFound = Kind(rawValue: "ModelNotFound")

        // MARK: The ML actor

        /// A model folder, tokenizer or chat template the engine cannot use; the reason names the file and field. (not retryable)
        public static let invalidModel = Kind(rawValue: "InvalidModel")
        /// An adapter folder that does not load. (not retryable)
        public static let invalidAdapter = Kind(rawValue: "InvalidAdapter")
        /// A dataset line that is not a training example; the reason names the line. (not retryable)
        public static let invalidDataset = Kind(rawValue: "InvalidDataset")
        /// Training settings the model cannot take (an unknown target module). (not retryable)
        public static let invalidTrainingRequest = Kind(rawValue: "InvalidTrainingRequest")
        /// An evaluation the model cannot run. (not retryable)
        public static let invalidEvaluationRequest = Kind(rawValue: "InvalidEvaluationRequest")
        /// A generation the model cannot run (an empty prompt). (not retryable)
        public static let invalidGenerationRequest = Kind(rawValue: "InvalidGenerationRequest")
        /// Training stopped with an error (a checkpoint that could not be written). (not retryable)
        public static let trainingFailed = Kind(rawValue: "TrainingFailed")
        /// No training job with that id. (not retryable)
        public static let jobNotFound = Kind(rawValue: "JobNotFound")
        /// A training job's `job.json` does not decode. (not retryable)
        public static let corruptJobRecord = Kind(rawValue: "CorruptJobRecord")
        /// A training job's record could not be written. (retryable)
        public static let jobRecordUnwritable = Kind(rawValue: "JobRecordUnwritable")
        /// A training job's lock file could not be opened. (retryable)
        public static let jobLockUnavailable = Kind(rawValue: "JobLockUnavailable")

        // MARK: The OpenAI actor

        /// `OPENAI_API_KEY` is not set: set it, restart the worker, replay. (not retryable)
        public static let missingAPIKey = Kind(rawValue: "MissingAPIKey")
        /// The client's configuration is unusable (a bad base URL or price file). (not retryable)
        public static let invalidConfiguration = Kind(rawValue: "InvalidConfiguration")
        /// The daily cost budget is spent. (not retryable)
        public static let budgetExceeded = Kind(rawValue: "BudgetExceeded")
        /// The shared spend book could not book a call, so it was not sent. (retryable)
        public static let spendBookUnavailable = Kind(rawValue: "SpendBookUnavailable")
        /// The server answered 429 more often than the client retries. (retryable)
        public static let rateLimited = Kind(rawValue: "RateLimited")
        /// The server answered 5xx more often than the client retries. (retryable)
        public static let serverBusy = Kind(rawValue: "ServerBusy")
        /// The server reported an error in its answer. (retryable)
        public static let serverError = Kind(rawValue: "ServerError")
        /// The HTTP call timed out. (retryable)
        public static let timeout = Kind(rawValue: "Timeout")
        /// The server could not be reached. (retryable)
        public static let connectionFailed = Kind(rawValue: "ConnectionFailed")
        /// The server refused the request as malformed (400). (not retryable)
        public static let badRequest = Kind(rawValue: "BadRequest")
        /// The API key was refused (401). (not retryable)
        public static let unauthorized = Kind(rawValue: "Unauthorized")
        /// The key may not use this model or endpoint (403). (not retryable)
        public static let forbidden = Kind(rawValue: "Forbidden")
        /// No such model or endpoint (404). (not retryable)
        public static let notFound = Kind(rawValue: "NotFound")
        /// Another HTTP status the client does not retry. (not retryable)
        public static let unexpectedStatus = Kind(rawValue: "UnexpectedStatus")
        /// An answer that is not the API's JSON. (retryable)
        public static let malformedResponse = Kind(rawValue: "MalformedResponse")
        /// A model's answer that is not the shape the prompt asked for. (retryable)
        public static let unexpectedAnswer = Kind(rawValue: "UnexpectedAnswer")
        /// A prompt template that is missing or does not render. (not retryable)
        public static let promptError = Kind(rawValue: "PromptError")

        // MARK: Workflows and the coordinator

        /// No workflow of that name, or no workflow with that id. (not retryable)
        public static let unknownWorkflow = Kind(rawValue: "UnknownWorkflow")
        /// A `workflow-commands` message of a type the coordinator does not know. (not retryable)
        public static let unknownCommand = Kind(rawValue: "UnknownCommand")
        /// A command whose body does not decode. (not retryable)
        public static let invalidCommand = Kind(rawValue: "InvalidCommand")
        /// A schedule with a bad interval or cron expression. (not retryable)
        public static let invalidSchedule = Kind(rawValue: "InvalidSchedule")
        /// The workflow's code threw an error of its own. (not retryable)
        public static let workflowError = Kind(rawValue: "WorkflowError")
        /// A step got no reply within its policy's worst case and its re-sends. (not retryable)
        public static let activityTimedOut = Kind(rawValue: "ActivityTimedOut")
        /// A reply on `coordinator-replies` that does not decode. (not retryable)
        public static let malformedReply = Kind(rawValue: "MalformedReply")
        /// A step's recorded output does not decode as the type the workflow now asks for. (not retryable)
        public static let outputMismatch = Kind(rawValue: "OutputMismatch")
        /// A failed step or reply that carried no error of its own. (not retryable)
        public static let unknown = Kind(rawValue: "Unknown")
    }

    /// The failure's kind in the catalogue (``Kind``).
    public var kind: Kind { Kind(rawValue: type) }

    public init(kind: Kind, message: String, retryable: Bool) {
        self.init(type: kind.rawValue, message: message, retryable: retryable)
    }

    /// A failure that another attempt cannot fix: bad input, unsupported request.
    public static func nonRetryable(_ kind: Kind, _ message: String) -> ActivityFailure {
        ActivityFailure(kind: kind, message: message, retryable: false)
    }

    /// A failure that may pass: a dependency down, a timeout.
    public static func retryable(_ kind: Kind, _ message: String) -> ActivityFailure {
        ActivityFailure(kind: kind, message: message, retryable: true)
    }
}
