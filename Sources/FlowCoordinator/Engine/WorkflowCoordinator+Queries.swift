import FlowCore
import FlowRuntime
import FlowTransport
import Foundation

extension WorkflowCoordinator {
    /// Answers a read-only query from `workflow-commands` (`docs/protocol.md`, "Queries").
    ///
    /// Queries run beside commands and replies, each in its own task, and only read the
    /// store, so a long list never holds up a workflow. One that cannot be answered is told
    /// why in a ``CommandAnswer``; one with no `reply_to` has nobody to tell and is
    /// dead-lettered with that reason, so the sender can find out.
    func handleQuery(_ kind: WorkflowQuery.Kind, _ delivery: AMQPDelivery) async {
        observeLag(of: delivery, in: configuration.commandQueue)
        let properties = delivery.properties
        do {
            guard let replyTo = properties.replyTo, !replyTo.isEmpty else {
                try await reject(delivery, from: configuration.commandQueue, failure: .nonRetryable(.invalidCommand, "the query \(kind.rawValue) has no reply_to, so its answer could go nowhere: set reply_to (docs/protocol.md, Queries)"))
                try await delivery.ack()
                return
            }
            let recipient = ResultRecipient(replyTo: replyTo, correlationID: properties.correlationID ?? properties.messageID ?? "")
            let answers = WorkflowQueryAnswers(store: store)
            do {
                switch kind {
                case .list: try await publishAnswer(try await answers.list(try decodeQuery(WorkflowQuery.List.self, delivery)), type: WorkflowQuery.answerType, to: recipient)
                case .describe: try await publishAnswer(try await answers.describe(try decodeQuery(WorkflowQuery.Describe.self, delivery)), type: WorkflowQuery.answerType, to: recipient)
                case .history: try await publishAnswer(try await answers.history(try decodeQuery(WorkflowQuery.History.self, delivery)), type: WorkflowQuery.answerType, to: recipient)
                case .journal: try await publishAnswer(try await answers.journal(try decodeQuery(WorkflowQuery.Journal.self, delivery)), type: WorkflowQuery.answerType, to: recipient)
                case .schedules: try await publishAnswer(try await answers.schedules(), type: WorkflowQuery.answerType, to: recipient)
                case .workflowState:
                    let ask = try decodeQuery(WorkflowQuery.Ask.self, delivery)
                    let output = try await query(workflowID: ask.workflowID, name: ask.name)
                    try await publishAnswer(WorkflowQueryResult(workflowID: ask.workflowID, name: ask.name, output: output), type: WorkflowQuery.answerType, to: recipient)
                }
            } catch let failure as ActivityFailure {
                try await publishAnswer(CommandAnswer(accepted: false, command: kind.rawValue, message: failure.description), type: CommandAnswer.messageType, to: recipient)
            }
            try await delivery.ack()
            statistics.record(.queryAnswered)
        } catch let error as AMQPError where error.code == .staleDelivery {
            logger.warning("the broker connection dropped while answering a query; it is redelivered")
        } catch {
            await returnToQueue(delivery, after: error, what: "a query")
        }
    }

    /// Asks workflow `workflowID`'s code query `name` (`WorkflowContext.onQuery`) and returns
    /// the answer. A workflow running here answers from its state between two facts; any
    /// other (ended, or waiting to be taken up) is replayed from its journal first. Nothing
    /// is recorded either way.
    public func query(workflowID: String, name: String) async throws -> JSONText {
        if let handle = runs[workflowID] {
            let answered: JSONText? = try await withCheckedThrowingContinuation { done in
                if case .terminated = handle.inputs.yield(.query(name: name, done: done)) { done.resume(returning: nil) }
            }
            if let answered { return answered }
        }
        let entries = try await store.journal(workflowID: workflowID)
        guard let first = entries.first, case .workflowStarted(let workflow, _) = first.event else {
            throw ActivityFailure.nonRetryable(.invalidInput, "no workflow has id \(workflowID)")
        }
        let history = WorkflowHistory(workflowID: workflowID, workflow: workflow, events: entries)
        return try await WorkflowReplayer(registry: registry, clock: clock, logger: logger).query(history, name: name)
    }

    private func decodeQuery<Query: Decodable>(_ type: Query.Type, _ delivery: AMQPDelivery) throws -> Query {
        // An empty body asks with every default.
        let body = delivery.body.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 } ? Array("{}".utf8) : delivery.body
        do {
            return try FlowJSON.decode(type, from: body)
        } catch let error as DecodingError {
            throw ActivityFailure.nonRetryable(.invalidCommand, "the body of \(delivery.properties.type ?? "the query") does not decode: \(FlowJSON.describe(error)) (docs/protocol.md, Queries)")
        } catch {
            throw ActivityFailure.nonRetryable(.malformedJSON, "the body of \(delivery.properties.type ?? "the query") is not JSON (docs/protocol.md, Queries)")
        }
    }
}

/// The answers to the queries, read from a store: what the coordinator sends, and what
/// `flow workflow list|show --data-dir` prints when no coordinator runs.
public struct WorkflowQueryAnswers: Sendable {
    let store: any WorkflowStore

    public init(store: any WorkflowStore) { self.store = store }

    /// A page of workflows. The page token is the last workflow's place in the order, so
    /// paging is stable while workflows start and end.
    public func list(_ query: WorkflowQuery.List) async throws -> WorkflowPage {
        var filter = WorkflowFilter(
            statuses: Set(query.statuses ?? []), name: query.name, startedAfter: query.startedAfter,
            startedBefore: query.startedBefore, idContains: query.idContains
        )
        if let text = query.where, !text.isEmpty { filter = try filter.narrowed(by: try WorkflowWhere.parse(text)) }
        let limit = min(max(query.limit ?? 50, 1), WorkflowQuery.maximumPageSize)
        let cursor = try query.page.map(PageToken.cursor(from:))
        // One more than asked tells whether a next page exists without a second query.
        let summaries = try await store.workflows(matching: filter, after: cursor, limit: limit + 1)
        let page = Array(summaries.prefix(limit))
        let total = try await store.countWorkflows(matching: filter)
        let next = summaries.count > limit ? page.last.map { PageToken.token(for: WorkflowCursor(startedAt: $0.startedAt, id: $0.id)) } : nil
        return WorkflowPage(workflows: page, total: total, nextPage: next)
    }

    public func describe(_ query: WorkflowQuery.Describe) async throws -> WorkflowDescription {
        guard let record = try await store.workflow(id: query.workflowID) else {
            throw ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow has id \(query.workflowID)")
        }
        let steps = try await store.steps(workflowID: record.id).sorted { ($0.scheduledAt, $0.stepKey) < ($1.scheduledAt, $1.stepKey) }
        let journal = try WorkflowJournal(try await store.journal(workflowID: record.id))
        let children = journal.commands.compactMap { command -> ChildSummary? in
            guard case .child(let child, let state) = command else { return nil }
            let status = switch state {
            case .waiting: "running"
            case .completed: "completed"
            case .failed: "failed"
            }
            return ChildSummary(workflowID: child.workflowID, workflow: child.workflow, position: child.position, status: status, parentClosePolicy: child.parentClosePolicy.rawValue)
        }
        let attributes = try await store.attributes(workflowID: record.id)
        var description = WorkflowDescription(
            workflow: record.summary, input: record.input, output: record.output, error: record.error, steps: steps.map(\.summary),
            parent: record.parent.map { ParentSummary(workflowID: $0.workflowID, position: $0.position) }, children: children.isEmpty ? nil : children,
            searchAttributes: attributes.search.isEmpty ? nil : attributes.search, memo: attributes.memo
        )
        description.pausedBecause = journal.pausedBecause
        description.commands = journal.commands.enumerated().map { Self.commandSummary($0.element, at: $0.offset) }
        description.run = record.run
        let runs = record.run > 1 || record.chainID != record.id ? try await store.runs(of: record.id) : []
        description.runs = runs.count > 1 ? runs : nil
        return description
    }

    static func commandSummary(_ command: WorkflowJournal.Command, at position: Int) -> CommandSummary {
        switch command {
        case .activity(let scheduled, let state):
            let status = switch state {
            case .waiting: "waiting"
            case .completed: "completed"
            case .failed: "failed"
            case .parked: "parked"
            }
            return CommandSummary(position: position, kind: "activity", name: scheduled.activity, status: status)
        case .timer(let key, _, let fired):
            return CommandSummary(position: position, kind: "timer", name: key, status: fired ? "fired" : "waiting")
        case .marker(let name, _):
            return CommandSummary(position: position, kind: "marker", name: name, status: "recorded")
        case .child(let child, let state):
            let status = switch state {
            case .waiting: "waiting"
            case .completed: "completed"
            case .failed: "failed"
            }
            return CommandSummary(position: position, kind: "child", name: "\(child.workflow) \(child.workflowID)", status: status)
        }
    }

    public func journal(_ query: WorkflowQuery.Journal) async throws -> WorkflowJournalPage {
        guard let record = try await store.workflow(id: query.workflowID) else {
            throw ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow has id \(query.workflowID)")
        }
        let limit = min(max(query.limit ?? 200, 1), WorkflowQuery.maximumPageSize)
        let after = query.after ?? 0
        let entries = try await store.journal(workflowID: query.workflowID).filter { $0.sequence > after }
        let page = Array(entries.prefix(limit))
        return WorkflowJournalPage(
            workflowID: record.id, workflow: record.name, events: try page.map { try JSONText(encoding: $0) },
            nextAfter: entries.count > limit ? page.last?.sequence : nil
        )
    }

    public func history(_ query: WorkflowQuery.History) async throws -> WorkflowHistoryPage {
        guard try await store.workflow(id: query.workflowID) != nil else {
            throw ActivityFailure.nonRetryable(.unknownWorkflow, "no workflow has id \(query.workflowID)")
        }
        let limit = min(max(query.limit ?? 200, 1), WorkflowQuery.maximumPageSize)
        let events = try await store.history(workflowID: query.workflowID, after: query.after, limit: limit + 1)
        let page = Array(events.prefix(limit))
        return WorkflowHistoryPage(
            workflowID: query.workflowID,
            events: page.map { WorkflowHistoryEvent(sequence: $0.sequence, at: $0.event.at, kind: $0.kindName, stepKey: $0.event.stepKey, detail: $0.event.detail) },
            nextAfter: events.count > limit ? page.last?.sequence : nil
        )
    }

    /// Every schedule, with the workflow its last run started and where that stands.
    public func schedules() async throws -> ScheduleList {
        var summaries: [ScheduleSummary] = []
        for schedule in try await store.schedules() {
            // Schedules from before their last run was recorded: the newest run by its id.
            let last = if let id = schedule.lastWorkflowID {
                try await store.workflow(id: id).map { (id: $0.id, status: $0.status) }
            } else {
                try await store.workflows(matching: WorkflowFilter(idPrefix: "\(schedule.name)@"), after: nil, limit: 1).first.map { (id: $0.id, status: $0.status) }
            }
            summaries.append(
                ScheduleSummary(
                    name: schedule.name, workflow: schedule.workflow, input: schedule.input, everySeconds: schedule.everySeconds,
                    cron: schedule.cron, nextRunAt: schedule.nextRunAt, lastRunAt: schedule.lastRunAt, runs: schedule.runs,
                    lastWorkflowID: last?.id, lastStatus: last?.status, overlap: schedule.overlap.rawValue, catchupWindowSeconds: schedule.catchupWindowSeconds,
                    jitterSeconds: schedule.jitterSeconds, paused: schedule.paused, pauseNote: schedule.pauseNote, waiting: schedule.buffered.count, skipped: schedule.skipped
                )
            )
        }
        return ScheduleList(schedules: summaries)
    }
}

/// The opaque `page` of a workflow list: the cursor, as base64url JSON.
enum PageToken {
    static func token(for cursor: WorkflowCursor) -> String {
        let data = (try? FlowJSON.encode(cursor)) ?? Data()
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func cursor(from token: String) throws -> WorkflowCursor {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let cursor = try? FlowJSON.decode(WorkflowCursor.self, from: data) else {
            throw ActivityFailure.nonRetryable(.invalidCommand, "page '\(token.prefix(60))' is not a page token this coordinator gave: pass the next_page of the previous answer unchanged")
        }
        return cursor
    }
}

extension WorkflowRecord {
    var summary: WorkflowSummary {
        WorkflowSummary(
            id: id, name: name, status: status, parkedReason: parkedReason, cancelRequested: cancelRequested,
            startedAt: startedAt, updatedAt: updatedAt, finishedAt: finishedAt, runOf: chainID == id ? nil : chainID
        )
    }
}

extension StepRecord {
    var summary: StepSummary {
        StepSummary(
            messageID: messageID, stepKey: stepKey, activity: activity, queue: queue, status: status.rawValue, attempt: attempt,
            sends: sends, scheduledAt: scheduledAt, sentAt: sentAt, lastHeardAt: lastHeardAt, input: input, output: result, error: error
        )
    }
}
