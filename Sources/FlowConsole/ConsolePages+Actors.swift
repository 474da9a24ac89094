import FlowClient
import FlowContracts
import FlowCore
import FlowObservability
import FlowDeadLetters
import Foundation
import Hummingbird

/// The pages of what the actors report: schedules (from the coordinator), training jobs
/// (from the ML actor's own activities) and OpenAI costs (from the workers' metrics).
extension ConsolePages {
    // MARK: Schedules, training, costs

    func schedules() async throws -> Response {
        let list = try await backend.schedules()
        let rows: [[String: Any]] = list.schedules.map { schedule in
            var row: [String: Any] = [
                "name": schedule.name, "workflow": schedule.workflow, "recurrence": schedule.cron.map { "cron \($0)" } ?? schedule.everySeconds.map { "every \($0) s" } ?? "",
                "nextRunAt": Views.time(schedule.nextRunAt), "lastRunAt": Views.time(schedule.lastRunAt), "runs": schedule.runs,
                "paused": schedule.paused ?? false, "pauseNote": schedule.pauseNote ?? "", "policy": Views.schedulePolicy(schedule),
            ]
            if let id = schedule.lastWorkflowID {
                row["lastWorkflowID"] = id
                row["lastPath"] = Views.segment(id)
                row["lastStatus"] = schedule.lastStatus?.rawValue ?? ""
            }
            return row
        }
        return page("Schedules", section: "/schedules", template: "schedules", values: ["schedules": rows])
    }

    func training() async throws -> Response {
        do {
            let jobs = try await backend.trainingJobs()
            return page("Training jobs", section: "/training", template: "training", values: ["jobs": jobs.map(Views.trainingJob)])
        } catch let silent as CoordinatorClient.NoAnswer {
            return page("Training jobs", section: "/training", template: "training", values: ["problem": "No ML worker answered list_training_jobs in time (\(silent.timeout)): is `flow worker ml` running?", "jobs": []])
        } catch let missing as ConsoleBackend.NoConsumer {
            return page("Training jobs", section: "/training", template: "training", values: ["problem": missing.description, "jobs": []])
        }
    }

    func trainingJob(_ id: String) async throws -> Response {
        let job = try await backend.trainingJob(id)
        var values = Views.trainingJob(job)
        values["curve"] = LossCurve(losses: job.lossHistory ?? []).svg
        values["csrf"] = security.csrfToken
        return page("Training job \(id)", section: "/training", template: "training-job", values: values)
    }

    func cancelTraining(_ request: Request, _ id: String) async throws -> Response {
        _ = try await checkedForm(request)
        let job = try await backend.cancelTraining(id)
        return done("Job \(id) is \(job.state.rawValue)\(job.cancelRequested ? ", cancel requested: it stops at its next checkpoint" : "").", back: "/training/\(Views.segment(id))", backLabel: "Back to the job")
    }

    func costs() async -> Response {
        let reports = await backend.processes().filter { ($0.metrics?.samples.contains { $0.name.hasPrefix("flow_openai_") }) == true }
        var values: [String: Any] = [:]
        guard !reports.isEmpty else {
            values["problem"] = "No OpenAI worker's /metrics could be read: start `flow worker openai`, or list its address in FLOW_CONSOLE_ENDPOINTS."
            values["spentToday"] = "0.00"
            values["budget"] = "unknown"
            values["models"] = [[String: Any]]()
            return page("OpenAI costs", section: "/costs", template: "costs", values: values)
        }
        let metrics = reports.compactMap(\.metrics)
        func total(_ name: String, _ labels: [String: String] = [:]) -> Double { metrics.reduce(0) { $0 + $1.sum(name, matching: labels) } }
        let spent = total(MetricNames.spentToday)
        let budget = metrics.compactMap { $0.samples.first { $0.name == MetricNames.dailyBudget }?.value }.max()
        values["spentToday"] = Views.number(spent, digits: 4)
        values["budget"] = budget.map { $0 > 0 ? "$" + Views.number($0, digits: 2) : "none" } ?? "unknown"
        if let budget, budget > 0 { values["share"] = Int((spent / budget * 100).rounded()) }
        let models = Set(metrics.flatMap { $0.labelValues(MetricNames.requests, MetricNames.model) + $0.labelValues(MetricNames.cost, MetricNames.model) }).sorted()
        values["models"] = models.map { model in
            [
                "model": model, "calls": Int(total(MetricNames.requests, [MetricNames.model: model])), "cached": Int(total(MetricNames.requests, [MetricNames.model: model, MetricNames.cached: "true"])),
                "prompt": Int(total(MetricNames.tokens, [MetricNames.model: model, MetricNames.tokenType: "input"])), "completion": Int(total(MetricNames.tokens, [MetricNames.model: model, MetricNames.tokenType: "output"])),
                "dollars": Views.number(total(MetricNames.cost, [MetricNames.model: model]), digits: 4),
                "today": Views.number(total(MetricNames.modelSpentToday, [MetricNames.model: model]), digits: 4),
            ] as [String: Any]
        }
        return page("OpenAI costs", section: "/costs", template: "costs", values: values)
    }
}
