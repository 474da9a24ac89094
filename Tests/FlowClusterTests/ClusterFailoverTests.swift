import FlowAMQP
import FlowCore
import FlowTesting
import Foundation
import Testing

/// A 3-node RabbitMQ cluster of the suite's own (ports 5811-5813), real `flow` processes
/// given all three addresses, and a node SIGKILLed under load. The figures these tests
/// print are the ones `docs/broker.md` reports.
@Suite("a 3-node RabbitMQ cluster loses a node without losing a message", .serialized)
struct ClusterFailoverTests {
    static let firstPort = 5811

    @Test("SIGKILL of the node leading default-queue while two workers run 5,000 activities published with confirms: every confirmed request is answered, the workers move to the surviving nodes, nothing is dead-lettered, and the node rejoins with its replicas")
    func workersSurviveTheLeadersNode() async throws {
        try await TestCluster.with(firstPort: Self.firstPort) { cluster in try await workersSurviveTheLeadersNode(cluster) }
    }

    func workersSurviveTheLeadersNode(_ cluster: TestCluster) async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("cluster"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-cluster-\(UUID().uuidString.prefix(8))")
        let workQueue = names.queue(.default)
        let observer = try await TestBroker.connect(name: "test cluster observer", url: cluster.url)
        func worker(_ index: Int) throws -> FlowProcess {
            try FlowProcess([
                "worker", "default", "--topology-prefix", names.prefix!, "--data-dir", folder.appendingPathComponent("worker-\(index)").path,
                "--metrics-port", "off", "--concurrency", "16", "--grace-period", "20", "--amqp-url", cluster.url,
            ])
        }

        // The first worker declares the topology, so the queue's leader is on its node (the
        // broker places a quorum queue's leader on the declaring client's node): that
        // worker is on the node that dies.
        let first = try worker(1)
        try await waitUntil(timeout: .seconds(60)) { (try? await observer.inspectQueue(workQueue).consumerCount) == 1 }
        let second = try worker(2)
        try await waitUntil(timeout: .seconds(60)) { (try? await observer.inspectQueue(workQueue).consumerCount) == 2 }
        let leader = try #require(try await cluster.replicas(of: workQueue, askingPort: cluster.ports[0]).leader)
        let survivors = cluster.ports.filter { $0 != leader }
        #expect(try await cluster.replicas(of: workQueue, askingPort: leader).members == Set(cluster.ports), "the queue has a replica on every node")

        // The publisher is on the leader's node too, so it loses confirms it must re-send.
        var publisherConfiguration = try TestBroker.configuration(name: "test cluster publisher", url: cluster.url)
        publisherConfiguration.endpoints.sort { first, _ in first.port == leader }
        publisherConfiguration.shufflesEndpoints = false
        let publisher = try await AMQPConnection.connect(publisherConfiguration, logger: TestBroker.logger)
        #expect(publisher.endpoint?.port == leader)

        let replies = ReplyBox()
        let replyTimes = Collected<ContinuousClock.Instant>()
        let replyConsumer = try await observer.consume(queue: names.coordinatorReplyQueue, prefetch: 500)
        let reader = Task {
            for try await delivery in replyConsumer {
                try await delivery.ack()
                if let reply = try? FlowJSON.decode(ActivityReply.self, from: delivery.body), reply.status != .progress {
                    await replies.add(reply)
                    await replyTimes.add(.now)
                }
            }
        }

        let total = 5_000
        let confirms = Collected<(id: String, at: ContinuousClock.Instant)>()
        let nacks = Collected<String>()
        let started = ContinuousClock.now
        let killedAt = KillTime()
        let killer = Task {
            try await waitUntil(timeout: .seconds(120)) { await confirms.all.count >= 1_500 }
            try cluster.kill(port: leader)
            await killedAt.set(.now)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<10 {
                group.addTask {
                    for index in stride(from: lane, to: total, by: 10) {
                        let id = "cluster-\(index)"
                        let properties = AMQPProperties(
                            contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: id,
                            replyTo: names.coordinatorReplyQueue, messageID: id, type: "echo"
                        )
                        let message = AMQPMessage(exchange: names.activitiesExchange, routingKey: workQueue, properties: properties, body: Array(#"{"n":\#(index)}"#.utf8))
                        // A client re-sends what the broker refused (a queue without a
                        // leader for a moment nacks); only confirmed requests are owed a reply.
                        for _ in 0..<20 {
                            do {
                                try await publisher.publish(message, retryOnReconnect: true)
                                await confirms.add((id, .now))
                                break
                            } catch let error as AMQPError where error.code == .publishNacked {
                                await nacks.add(id)
                                try await Task.sleep(for: .milliseconds(250))
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        try await killer.value
        let confirmed = await confirms.all
        #expect(confirmed.count == total, "every request is confirmed, re-sent past the kill when it has to be")

        try await replies.wait(timeout: .seconds(240)) { box in box.completedIDs.count >= Set(confirmed.map(\.id)).count }
        let answered = await replies.completedIDs
        let missing = Set(confirmed.map(\.id)).subtracting(answered)
        #expect(missing.isEmpty, "confirmed requests without a final reply: \(missing.sorted().prefix(20))")
        #expect(await replies.failedCount == 0)
        #expect(try await observer.inspectQueue(names.deadLetterQueue).messageCount == 0, "nothing is dead-lettered")
        #expect(publisher.recoveryCount >= 1 && publisher.endpoint.map { survivors.contains($0.port) } == true, "the publisher moved to a surviving node")

        // Both workers are on surviving nodes, and the first one moved there.
        let connections = try await cluster.connectionNames(askingPort: survivors[0])
        let workerConnections = connections.flatMap { port, names in names.filter { $0.hasPrefix("flow worker default") }.map { (port, $0) } }
        #expect(workerConnections.allSatisfy { survivors.contains($0.0) }, "worker connections: \(workerConnections)")
        #expect(workerConnections.count >= 2, "worker connections: \(workerConnections)")
        #expect(first.log.contains("the connection to the broker dropped; reconnecting"), "the first worker was on the killed node:\n\(first.log.suffix(3000))")

        // The figures: how long confirmed publishing stopped, and the rates around the kill.
        let kill = try #require(await killedAt.instant)
        let after = confirmed.map(\.at).filter { $0 > kill }.sorted()
        let resumed = after.first.map { $0 - kill } ?? .zero
        let gaps = zip(confirmed.map(\.at).sorted().dropFirst(), confirmed.map(\.at).sorted()).map { $0 - $1 }
        let times = await replyTimes.all
        func rate(_ instants: [ContinuousClock.Instant], from: ContinuousClock.Instant, to: ContinuousClock.Instant) -> Int {
            let seconds = Double((to - from).components.attoseconds) / 1e18 + Double((to - from).components.seconds)
            return seconds > 0 ? Int(Double(instants.filter { $0 >= from && $0 < to }.count) / seconds) : 0
        }
        let end = max(confirmed.map(\.at).max() ?? kill, times.max() ?? kill)
        print(
            """
            cluster failover: the leader's node (\(leader)) SIGKILLed after \(confirmed.filter { $0.at <= kill }.count) of \(total) confirms, \
            \(kill - started) into the run; first confirm after the kill +\(resumed); longest pause between confirms \(gaps.max() ?? .zero); \
            nacked and re-sent: \(await nacks.all.count); publisher recoveries: \(publisher.recoveryCount)
            cluster failover: confirms/s before the kill \(rate(confirmed.map(\.at), from: started, to: kill)), \
            in the 2 s after it \(rate(confirmed.map(\.at), from: kill, to: kill + .seconds(2))), \
            from then to the last confirm \(rate(confirmed.map(\.at), from: kill + .seconds(2), to: end)); \
            replies/s before \(rate(times, from: started, to: kill)), in the 2 s after \(rate(times, from: kill, to: kill + .seconds(2))), \
            from then to the last reply \(rate(times, from: kill + .seconds(2), to: end))
            """
        )

        // The node comes back, rejoins, and the queue has its three replicas online again.
        let restarting = ContinuousClock.now
        try await cluster.restart(port: leader)
        try await waitUntil(timeout: .seconds(120)) {
            (try? await cluster.replicas(of: workQueue, askingPort: survivors[0]).online) == Set(cluster.ports)
        }
        print("cluster failover: the killed node rejoined with the queue's replica online \(ContinuousClock.now - restarting) after its restart began")
        #expect(try await cluster.replicas(of: workQueue, askingPort: leader).members == Set(cluster.ports))

        reader.cancel()
        replyConsumer.cancel()
        for process in [first, second] { process.signal(SIGTERM) }
        for process in [first, second] { #expect(try await process.waitForExit(timeout: .seconds(30)) == 0, "\(process.log.suffix(2000))") }
        await publisher.close()
        await observer.close()
        try? FileManager.default.removeItem(at: folder)
    }

    @Test("SIGKILL of a node during 50 echo_chain workflows: all complete with their outputs, and no step runs twice")
    func workflowsSurviveANodeDying() async throws {
        try await TestCluster.with(firstPort: Self.firstPort) { cluster in try await workflowsSurviveANodeDying(cluster) }
    }

    func workflowsSurviveANodeDying(_ cluster: TestCluster) async throws {
        let names = TopologyNames(prefix: TestBroker.uniqueName("cluster-workflows"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-cluster-\(UUID().uuidString.prefix(8))")
        let requester = try await TestBroker.connect(name: "test cluster requester", url: cluster.url)
        try await requester.declare(names.topology)
        let resultQueue = TestBroker.uniqueName("cluster-results")
        try await requester.declare(Topology(queues: [.init(name: resultQueue, arguments: ["x-queue-type": "quorum", "x-quorum-initial-group-size": 3])]))
        let common = ["--topology-prefix", names.prefix!, "--metrics-port", "off", "--amqp-url", cluster.url]
        let worker = try FlowProcess(["worker", "default", "--data-dir", folder.appendingPathComponent("worker").path, "--concurrency", "8"] + common)
        let coordinator = try FlowProcess(["coordinator", "--data-dir", folder.appendingPathComponent("coordinator").path] + common)

        let count = 50
        let steps = 4
        for index in 0..<count {
            let start = WorkflowCommand.Start(
                workflow: "echo_chain", workflowID: "cluster-\(index)",
                input: try JSONText(encoding: ["text": .string("payload \(index)"), "steps": .integer(Int64(steps)), "pause_seconds": .integer(1)] as [String: JSONValue])
            )
            let properties = AMQPProperties(
                contentType: FlowProtocol.contentType, deliveryMode: 2, correlationID: "cluster-\(index)", replyTo: resultQueue,
                messageID: "start-\(index)", type: WorkflowCommand.Kind.start.rawValue
            )
            try await requester.publish(AMQPMessage(routingKey: names.name(Topology.workflowCommandQueue), properties: properties, body: Array(try FlowJSON.encode(start))))
        }
        let results = try await requester.consume(queue: resultQueue, prefetch: 100)
        let collected = Collected<WorkflowResult>()
        let reader = Task {
            for try await delivery in results {
                try await delivery.ack()
                if let result = try? FlowJSON.decode(WorkflowResult.self, from: delivery.body) { await collected.add(result) }
            }
        }

        // The node that leads the replies to the coordinator dies with workflows mid-way.
        let replyQueue = names.coordinatorReplyQueue
        let leader = try #require(try await cluster.replicas(of: replyQueue, askingPort: cluster.ports[0]).leader)
        try await Task.sleep(for: .seconds(2))
        try cluster.kill(port: leader)

        // A result can come twice (a publish re-sent across a reconnection; its message id
        // `<id>#result` tells the copies apart), so wait for each workflow's, not for a count.
        try? await waitUntil(timeout: .seconds(180)) { Set(await collected.all.map(\.workflowID)).count >= count }
        let finished = await collected.all
        let missing = Set((0..<count).map { "cluster-\($0)" }).subtracting(finished.map(\.workflowID))
        let troubles = coordinator.log.split(separator: "\n").filter { $0.contains(" warning ") || $0.contains(" error ") }.suffix(40)
        let refusedResults = coordinator.log.split(separator: "\n").filter { $0.contains("could not send a workflow's result") }.count
        print("cluster workflows: \(finished.count) results received; \(refusedResults) results the broker refused at first and the coordinator sent again")
        if !missing.isEmpty {
            let saved = FileManager.default.temporaryDirectory.appendingPathComponent("flow-cluster-failure-\(UUID().uuidString.prefix(8))")
            try? FileManager.default.createDirectory(at: saved, withIntermediateDirectories: true)
            try? worker.log.write(to: saved.appendingPathComponent("worker.log"), atomically: true, encoding: .utf8)
            try? coordinator.log.write(to: saved.appendingPathComponent("coordinator.log"), atomically: true, encoding: .utf8)
            print("cluster workflows: the processes' logs are in \(saved.path)")
        }
        let aboutMissing = coordinator.log.split(separator: "\n").filter { line in missing.contains { line.contains("\($0) ") || line.contains("\($0)\"") || line.hasSuffix($0) } }.suffix(60)
        #expect(missing.isEmpty, "no result for \(missing.sorted()); the coordinator's warnings and errors:\n\(troubles.joined(separator: "\n"))\nits lines about them:\n\(aboutMissing.joined(separator: "\n"))")
        for result in finished {
            let index = result.workflowID.split(separator: "-").last!
            #expect(result.status == .completed, "\(result.workflowID): \(String(describing: result.error))")
            #expect(result.output?.text == #"{"steps":\#(steps),"text":"payload \#(index)"}"#)
        }
        func messageIDs(loggedWith text: String) -> [String] {
            worker.log.split(separator: "\n").filter { $0.contains(text) }.compactMap { line -> String? in
                guard let range = line.range(of: "message.id=") else { return nil }
                return String(line[range.upperBound...].prefix { !$0.isWhitespace })
            }
        }
        // A step ran once when the worker completed it; one whose reply went down with its
        // connection ran once too, and its redelivery is answered from the worker's store.
        // The worker logs after replying, and its log comes through a pipe: the last lines
        // can arrive after the workflows' results.
        func answeredSteps() -> Set<String> {
            Set(messageIDs(loggedWith: "activity completed")).union(messageIDs(loggedWith: "duplicate of a completed activity; answering from the store"))
        }
        try? await waitUntil(timeout: .seconds(30)) { answeredSteps().count >= count * steps }
        let completedRuns = messageIDs(loggedWith: "activity completed")
        print("cluster workflows: \(Set(completedRuns).count) steps completed and replied to at once, \(answeredSteps().count - Set(completedRuns).count) answered from the worker's store after their reply was lost")
        #expect(answeredSteps().count == count * steps, "each of the \(count * steps) steps completes")
        #expect(completedRuns.count == Set(completedRuns).count, "a step ran twice: \(Dictionary(grouping: completedRuns, by: { $0 }).filter { $0.value.count > 1 }.keys)")
        let deadLettered = try await requester.inspectQueue(names.deadLetterQueue).messageCount
        let deadLetters = try await describeMessages(in: names.deadLetterQueue, count: deadLettered, on: requester)
        #expect(deadLettered == 0, "dead-lettered:\n\(deadLetters)")

        reader.cancel()
        results.cancel()
        worker.signal(SIGTERM)
        coordinator.signal(SIGTERM)
        #expect(try await worker.waitForExit(timeout: .seconds(30)) == 0)
        #expect(try await coordinator.waitForExit(timeout: .seconds(30)) == 0)
        await requester.close()
        try? FileManager.default.removeItem(at: folder)
    }
}

/// One line per message of `queue` (which it empties): its ids, type and the headers that
/// say why and from where it was dead-lettered.
func describeMessages(in queue: String, count: Int, on connection: AMQPConnection) async throws -> String {
    guard count > 0 else { return "" }
    let consumer = try await connection.consume(queue: queue, prefetch: UInt16(min(count, 500)))
    let box = Collected<AMQPDelivery>()
    let reader = Task { for try await delivery in consumer { await box.add(delivery) } }
    await box.wait(forCount: count, timeout: .seconds(10))
    consumer.cancel()
    reader.cancel()
    var lines: [String] = []
    for delivery in await box.all {
        try? await delivery.ack()
        let properties = delivery.properties
        let headers = (properties.headers ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.append("message.id=\(properties.messageID ?? "-") correlation.id=\(properties.correlationID ?? "-") type=\(properties.type ?? "-") \(headers)")
    }
    return lines.joined(separator: "\n")
}

/// When the killer task SIGKILLed the node.
actor KillTime {
    private(set) var instant: ContinuousClock.Instant?
    func set(_ instant: ContinuousClock.Instant) { self.instant = instant }
}
