import FlowContracts
import FlowCore
import FlowDeadLetters
import Foundation

/// Turns what the backend read into the values the templates show. Every value is text or
/// numbers formatted here; escaping is the templates' job.
enum Views {
    static func time(_ date: Date?) -> String { date.map(JSONDates.text) ?? "" }

    /// A path segment: ids may hold any character.
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~@"))) ?? text
    }

    static func seconds(_ value: Double) -> String {
        value < 1 ? String(format: "%.0f ms", value * 1000) : value < 120 ? String(format: "%.2f s", value) : String(format: "%.1f min", value / 60)
    }

    static func number(_ value: Double?, digits: Int = 4) -> String {
        guard let value, value.isFinite else { return "" }
        return String(format: "%.\(digits)f", locale: Locale(identifier: "en_US_POSIX"), value)
    }

    static func workflowRows(_ page: WorkflowPage) -> [[String: Any]] {
        page.workflows.map { workflow in
            [
                "id": workflow.id, "path": segment(workflow.id), "name": workflow.name, "status": workflow.status.rawValue,
                "startedAt": time(workflow.startedAt), "parkedReason": workflow.parkedReason ?? "",
            ]
        }
    }

    /// A schedule's policy in a few words: overlap, skipped and waiting runs, catch-up window, jitter.
    static func schedulePolicy(_ schedule: ScheduleSummary) -> String {
        var parts = ["overlap \(schedule.overlap ?? "skip")"]
        if let skipped = schedule.skipped, skipped > 0 { parts.append("\(skipped) skipped") }
        if let waiting = schedule.waiting, waiting > 0 { parts.append("\(waiting) waiting") }
        if let window = schedule.catchupWindowSeconds { parts.append("catch-up \(seconds(Double(window)))") }
        if let jitter = schedule.jitterSeconds { parts.append("jitter \(seconds(Double(jitter)))") }
        return parts.joined(separator: ", ")
    }

    static func workflow(_ description: WorkflowDescription, history: [WorkflowHistoryEvent], csrf: String) -> [String: Any] {
        let workflow = description.workflow
        let start = workflow.startedAt
        func offset(_ date: Date) -> String { seconds(max(0, date.timeIntervalSince(start))) }
        let steps: [[String: Any]] = description.steps.enumerated().map { index, step in
            var values: [String: Any] = [
                "index": index + 1, "activity": step.activity, "status": step.status, "queue": step.queue, "messageID": step.messageID,
                "attempt": step.attempt, "sends": step.sends, "scheduledAt": time(step.scheduledAt), "input": pretty(step.input),
            ]
            if let output = step.output { values["output"] = pretty(output) }
            if let error = step.error { values["error"] = error.description }
            if let heard = step.lastHeardAt, step.status != "scheduled" { values["took"] = seconds(heard.timeIntervalSince(step.scheduledAt)) }
            return values
        }
        // The parallel branches, as lanes: a step goes on the first lane whose last step
        // had ended before it was scheduled, so the steps of one lane ran one after another
        // and steps on different lanes overlapped in time. A step not ended yet (waiting,
        // parked) keeps its lane open.
        var lanes: [(end: Date, steps: [[String: Any]])] = []
        for (index, step) in description.steps.enumerated() {
            let ended = step.status == "completed" || step.status == "failed"
            let end = ended ? (step.lastHeardAt ?? step.scheduledAt) : .distantFuture
            var entry = steps[index]
            entry["offset"] = offset(step.scheduledAt)
            if let lane = lanes.firstIndex(where: { $0.end <= step.scheduledAt }) {
                lanes[lane].end = end
                lanes[lane].steps.append(entry)
            } else {
                lanes.append((end, [entry]))
            }
        }
        let branches: [[String: Any]] = lanes.enumerated().map { number, lane in ["name": "Branch \(number + 1)", "steps": lane.steps] }
        var values: [String: Any] = [
            "status": workflow.status.rawValue, "name": workflow.name, "startedAt": time(workflow.startedAt), "path": segment(workflow.id),
            "cancelRequested": workflow.cancelRequested, "input": pretty(description.input), "steps": steps, "branches": branches, "csrf": csrf,
            "parked": workflow.status == .parked, "running": !workflow.status.isFinished,
            "events": history.map { event in
                ["offset": offset(event.at), "kind": event.kind, "stepKey": event.stepKey ?? "", "detail": event.detail] as [String: Any]
            },
        ]
        if let finished = workflow.finishedAt {
            values["finishedAt"] = time(finished)
            values["duration"] = seconds(finished.timeIntervalSince(start))
        }
        if let reason = workflow.parkedReason { values["parkedReason"] = reason }
        if let parent = description.parent { values["parent"] = ["id": parent.workflowID, "path": segment(parent.workflowID)] }
        if let runs = description.runs {
            // The chain of runs, first to current (continue-as-new, reset), each linked.
            values["hasRuns"] = true
            values["runs"] = runs.map { run in
                ["id": run.id, "path": segment(run.id), "status": run.status.rawValue, "current": run.id == workflow.id] as [String: Any]
            }
        }
        if let search = description.searchAttributes {
            values["search"] = search.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: ", ")
        }
        if let memo = description.memo { values["memo"] = pretty(memo) }
        if let reason = description.pausedBecause { values["pausedBecause"] = reason }
        values["pausable"] = !workflow.status.isFinished && description.pausedBecause == nil
        // A run a later run replaced is history: its workflow's current run is what resets.
        if workflow.runOf == nil, let commands = description.commands {
            values["resettable"] = true
            values["commands"] = commands.map { ["position": $0.position, "kind": $0.kind, "name": $0.name, "status": $0.status] as [String: Any] }
            values["commandCount"] = commands.count
        }
        if let children = description.children {
            values["hasChildren"] = true
            values["children"] = children.map { child in
                ["id": child.workflowID, "path": segment(child.workflowID), "workflow": child.workflow, "status": child.status, "policy": child.parentClosePolicy] as [String: Any]
            }
        }
        if let output = description.output { values["output"] = pretty(output) }
        if let error = description.error { values["error"] = error.description }
        return values
    }

    static func pretty(_ json: JSONText) -> String {
        (try? FlowJSON.encodeText(json.value, pretty: true)) ?? json.text
    }

    static func deadLetterRows(_ letters: ArraySlice<DeadLetterSummary>) -> [[String: Any]] {
        letters.map { letter in
            [
                "id": letter.id, "path": segment(letter.id), "when": time(letter.deadLetteredAt), "queue": letter.queue ?? "",
                "activity": letter.activity ?? "", "reason": letter.reason, "error": [letter.errorType, letter.error].compactMap { $0 }.joined(separator: ": "),
                "replays": letter.replays,
            ]
        }
    }

    static func trainingJob(_ job: TrainingJob) -> [String: Any] {
        var values: [String: Any] = [
            "jobID": job.jobID, "path": segment(job.jobID), "state": job.state.rawValue, "step": job.step, "loss": number(job.loss),
            "bestLoss": number(job.bestLoss), "tokensPerSecond": number(job.tokensPerSecond, digits: 1), "updatedAt": time(job.updatedAt),
            "baseModel": job.request.baseModel, "workerID": job.workerID ?? "", "deliveries": job.deliveries, "checkpoints": job.checkpoints,
            "cancelRequested": job.cancelRequested, "cancellable": !job.state.isFinal && !job.cancelRequested,
        ]
        if let maximum = job.maximumSteps { values["maximumSteps"] = maximum }
        if let error = job.error { values["error"] = error.description }
        return values
    }
}
