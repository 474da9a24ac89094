import FlowObservability

/// The Prometheus names the console reads from each process's `/metrics`, taken from the
/// catalogue the processes record with, so the two cannot drift apart.
enum MetricNames {
    static let outcomes = FlowMetricCatalogue.activityOutcomes.prometheusName
    static let inFlight = FlowMetricCatalogue.activitiesInFlight.prometheusName
    static let requests = FlowMetricCatalogue.openAIRequests.prometheusName
    static let tokens = FlowMetricCatalogue.openAITokens.prometheusName
    static let cost = FlowMetricCatalogue.openAICost.prometheusName
    static let spentToday = FlowMetricCatalogue.openAISpentToday.prometheusName
    static let modelSpentToday = FlowMetricCatalogue.openAIModelSpentToday.prometheusName
    static let dailyBudget = FlowMetricCatalogue.openAIDailyBudget.prometheusName

    static let outcome = MetricDefinition.prometheusLabel(FlowMetricCatalogue.Attribute.outcome)
    static let model = MetricDefinition.prometheusLabel(FlowMetricCatalogue.Attribute.requestModel)
    static let tokenType = MetricDefinition.prometheusLabel(FlowMetricCatalogue.Attribute.tokenType)
    static let cached = MetricDefinition.prometheusLabel("flow.cached")
}
