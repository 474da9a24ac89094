/// Every metric the system exports, declared once: the code records through these
/// definitions, docs/observability.md lists them, and a test checks that the dashboard and
/// the alert rules name only these.
public enum FlowMetricCatalogue {
    // MARK: Workers (every queue)

    /// Time to process one delivery, by queue, activity and outcome (OpenTelemetry's
    /// `messaging.process.duration`).
    public static let processDuration = MetricDefinition(
        "messaging.process.duration", .histogram, unit: .seconds,
        attributes: [Attribute.destination, Attribute.activity, Attribute.outcome],
        help: "Time from the start of an activity to its outcome, by queue, activity and outcome.",
        buckets: .durations(Buckets.activity), replaces: "flow_activity_duration_seconds (a summary of completed activities only)"
    )
    public static let activityOutcomes = MetricDefinition(
        "flow.activity.outcomes", .counter, attributes: [Attribute.destination, Attribute.activity, Attribute.outcome],
        help: "Deliveries by outcome: started, completed, failed, retried, dead_lettered, duplicate, deferred, cancelled.",
        replaces: "flow_activities_total"
    )
    public static let activityRetries = MetricDefinition(
        "flow.activity.retries", .counter, attributes: [Attribute.destination, Attribute.activity, Attribute.errorType],
        help: "Attempts parked in a retry delay tier, by the failure's type."
    )
    public static let deadLetters = MetricDefinition(
        "flow.dead_letters", .counter, attributes: [Attribute.destination, Attribute.activity, Attribute.errorType],
        help: "Messages a worker put into the dead-letter queue, by the failure's type."
    )
    public static let activitiesInFlight = MetricDefinition(
        "flow.activities.in_flight", .gauge, attributes: [Attribute.destination],
        help: "Activities running now.", replaces: "flow_activities_in_flight"
    )
    public static let workerConsuming = MetricDefinition(
        "flow.worker.consuming", .gauge, attributes: [Attribute.destination],
        help: "1 while the worker consumes its queue and is connected to the broker, else 0 (what /readyz reports)."
    )
    public static let amqpRecoveries = MetricDefinition(
        "flow.amqp.recoveries", .counter, help: "Times the broker connection was re-established.", replaces: "flow_amqp_recoveries_total"
    )

    // MARK: The coordinator

    public static let coordinatorEvents = MetricDefinition(
        "flow.coordinator.events", .counter, attributes: ["event"],
        help: "Workflow and step events: workflow_started, step_sent, step_resent, step_parked, duplicate_reply, …",
        replaces: "flow_coordinator_events_total"
    )
    public static let workflowStarts = MetricDefinition(
        "flow.workflow.starts", .counter, attributes: [Attribute.workflowName], help: "Workflows started, by name."
    )
    public static let workflowEnds = MetricDefinition(
        "flow.workflow.ends", .counter, attributes: [Attribute.workflowName, Attribute.workflowStatus],
        help: "Workflows ended, by name and status (completed, failed, cancelled)."
    )
    public static let workflowDuration = MetricDefinition(
        "flow.workflow.duration", .histogram, unit: .seconds, attributes: [Attribute.workflowName, Attribute.workflowStatus],
        help: "Time from a workflow's start to its end, by name and status.", buckets: .durations(Buckets.workflow)
    )
    public static let workflowSteps = MetricDefinition(
        "flow.workflow.steps", .histogram, attributes: [Attribute.workflowName],
        help: "Steps per ended workflow, by name.", buckets: .values([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
    )
    public static let workflowsRunning = MetricDefinition(
        "flow.workflows.running", .gauge, help: "Workflows running (or parked) in the coordinator now.", replaces: "flow_workflows_running"
    )
    public static let workflowsParked = MetricDefinition(
        "flow.workflows.parked", .gauge, help: "Workflows with a parked step, waiting for an operator's replay."
    )
    public static let oldestParkedAt = MetricDefinition(
        "flow.workflows.parked.oldest_timestamp", .gauge, unit: .seconds,
        help: "When the longest-parked step parked, in seconds since 1970; 0 when none is parked."
    )
    public static let stepDuration = MetricDefinition(
        "flow.step.duration", .histogram, unit: .seconds, attributes: [Attribute.activity, Attribute.outcome],
        help: "Time from sending a step's request to its final reply, by activity and outcome (completed, failed, parked).",
        buckets: .durations(Buckets.activity)
    )
    public static let coordinatorQueueLag = MetricDefinition(
        "flow.coordinator.queue.lag", .histogram, unit: .seconds, attributes: [Attribute.destination],
        help: "Time a message waited in workflow-commands or coordinator-replies before the coordinator took it.",
        buckets: .durations(Buckets.lag)
    )

    // MARK: Training (ml-queue)

    public static let trainingSteps = MetricDefinition(
        "flow.training.steps", .counter, attributes: [Attribute.model], help: "Optimizer steps trained, by base model; rate() gives steps/s."
    )
    public static let trainingStepDuration = MetricDefinition(
        "flow.training.step.duration", .histogram, unit: .seconds, attributes: [Attribute.model],
        help: "Time per optimizer step, by base model.", buckets: .durations(Buckets.trainingStep)
    )
    public static let trainingLoss = MetricDefinition(
        "flow.training.loss", .gauge, attributes: [Attribute.model], help: "The loss of the last step trained, by base model."
    )
    public static let trainingJobsRunning = MetricDefinition(
        "flow.training.jobs.running", .gauge, help: "Training jobs this worker trains now."
    )
    public static let trainingCheckpoints = MetricDefinition(
        "flow.training.checkpoints", .counter, attributes: [Attribute.model], help: "Checkpoints written, by base model."
    )

    // MARK: OpenAI (openai-queue)

    public static let openAIRequests = MetricDefinition(
        "flow.openai.requests", .counter, attributes: [Attribute.requestModel, "flow.cached"],
        help: "Chat and embedding calls by model, cache hits (flow_cached=\"true\") included.", replaces: "flow_openai_requests_total"
    )
    public static let openAITokens = MetricDefinition(
        "flow.openai.tokens", .counter, attributes: [Attribute.requestModel, Attribute.tokenType],
        help: "Tokens used by model and type (input, output).", replaces: "flow_openai_tokens_total (kind prompt/completion is now gen_ai_token_type input/output)"
    )
    public static let tokenUsage = MetricDefinition(
        "gen_ai.client.token.usage", .histogram, attributes: [Attribute.requestModel, Attribute.tokenType],
        help: "Tokens per call, by model and type (OpenTelemetry's GenAI convention).",
        buckets: .values([1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304])
    )
    public static let operationDuration = MetricDefinition(
        "gen_ai.client.operation.duration", .histogram, unit: .seconds, attributes: [Attribute.requestModel, Attribute.operationName],
        help: "Time per API call (chat or embeddings), retries included, by model (OpenTelemetry's GenAI convention).",
        buckets: .durations([0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92].map { .milliseconds(Int64($0 * 1000)) })
    )
    public static let openAICost = MetricDefinition(
        "flow.openai.cost", .counter, unit: .usd, attributes: [Attribute.requestModel],
        help: "Dollars spent by model, from reported usage and the price table.", replaces: "flow_openai_cost_usd_total"
    )
    public static let openAISpentToday = MetricDefinition(
        "flow.openai.spent_today", .gauge, unit: .usd, help: "Dollars spent today (UTC).", replaces: "flow_openai_spent_today_usd"
    )
    public static let openAIModelSpentToday = MetricDefinition(
        "flow.openai.model.spent_today", .gauge, unit: .usd, attributes: [Attribute.requestModel],
        help: "Dollars spent today (UTC) by model, since the worker started.", replaces: "flow_openai_model_spent_today_usd"
    )
    public static let openAIDailyBudget = MetricDefinition(
        "flow.openai.daily_budget", .gauge, unit: .usd, help: "The daily budget (FLOW_OPENAI_DAILY_BUDGET_USD); absent when none is set.",
        replaces: "flow_openai_daily_budget_usd"
    )
    public static let rateLimitWait = MetricDefinition(
        "flow.openai.rate_limit.wait", .histogram, unit: .seconds, attributes: [Attribute.requestModel],
        help: "Time a call waited for the rate limiter (the configured limits or the server's Retry-After), by model.",
        buckets: .durations(Buckets.rateLimitWait)
    )
    public static let rateLimitEffective = MetricDefinition(
        "flow.openai.rate_limit.effective", .gauge, attributes: [Attribute.requestModel],
        help: "Requests per limiter window allowed now: the configured limit, capped by the server's announced one, cut by a 429 and grown back by accepted calls."
    )
    public static let openAIRetries = MetricDefinition(
        "flow.openai.retries", .counter, attributes: [Attribute.requestModel, Attribute.errorType],
        help: "API calls made again after a 429, a 5xx, a timeout or a dropped connection, by model and error type."
    )

    /// All of them, in the order docs/observability.md lists them.
    public static let all: [MetricDefinition] = [
        processDuration, activityOutcomes, activityRetries, deadLetters, activitiesInFlight, workerConsuming, amqpRecoveries,
        coordinatorEvents, workflowStarts, workflowEnds, workflowDuration, workflowSteps, workflowsRunning, workflowsParked, oldestParkedAt,
        stepDuration, coordinatorQueueLag,
        trainingSteps, trainingStepDuration, trainingLoss, trainingJobsRunning, trainingCheckpoints,
        openAIRequests, openAITokens, tokenUsage, operationDuration, openAICost, openAISpentToday, openAIModelSpentToday, openAIDailyBudget,
        rateLimitWait, rateLimitEffective, openAIRetries,
    ]

    /// The attribute names, OpenTelemetry's where one exists.
    public enum Attribute {
        public static let destination = "messaging.destination.name"
        public static let activity = "flow.activity.name"
        public static let outcome = "flow.outcome"
        public static let errorType = "error.type"
        public static let workflowName = "flow.workflow.name"
        public static let workflowStatus = "flow.workflow.status"
        public static let model = "flow.training.model"
        public static let requestModel = "gen_ai.request.model"
        public static let tokenType = "gen_ai.token.type"
        public static let operationName = "gen_ai.operation.name"
    }

    /// Bucket bounds chosen for each kind of latency: from a cached answer (under a
    /// millisecond) to a training delivery (twenty minutes).
    enum Buckets {
        static let activity: [Duration] = [
            .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
            .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600), .seconds(1800),
        ]
        static let workflow: [Duration] = [
            .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
            .seconds(600), .seconds(1800), .seconds(3600), .seconds(7200), .seconds(21600), .seconds(86400),
        ]
        static let lag: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
        ]
        static let trainingStep: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        static let rateLimitWait: [Duration] = [
            .milliseconds(1), .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
    }
}
