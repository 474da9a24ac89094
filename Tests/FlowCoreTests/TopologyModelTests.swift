import FlowCore
import Foundation
import Testing

@Suite("the topology model")
struct TopologyModelTests {
    @Test("every work queue is a quorum queue with a delivery limit and at-least-once dead-lettering")
    func workQueuesAreSafe() throws {
        let topology = Topology.flow()
        for workQueue in WorkQueue.builtIn {
            let queue = try #require(topology.queues.first { $0.name == workQueue.queueName })
            #expect(queue.durable)
            #expect(queue.arguments["x-queue-type"] == "quorum")
            #expect(queue.arguments["x-delivery-limit"]?.integerValue == Topology.defaultDeliveryLimit)
            #expect(queue.arguments["x-dead-letter-exchange"]?.stringValue == Topology.deadLetterExchange)
            #expect(queue.arguments["x-dead-letter-strategy"] == "at-least-once")
            #expect(queue.arguments["x-overflow"] == "reject-publish")
        }
    }

    @Test("every retry tier dead-letters back to the activities exchange after its delay")
    func retryTiersLeadBack() throws {
        let topology = Topology.flow()
        for tier in Topology.retryDelayTiers {
            let queue = try #require(topology.queues.first { $0.name == Topology.retryQueueName(tier) })
            #expect(queue.arguments["x-message-ttl"]?.integerValue == tier.milliseconds)
            #expect(queue.arguments["x-dead-letter-exchange"]?.stringValue == Topology.activitiesExchange)
            #expect(queue.arguments["x-dead-letter-routing-key"] == nil, "the original routing key must survive")
            #expect(topology.bindings.contains { $0.queue == queue.name && $0.arguments[Topology.retryDelayHeader]?.stringValue == tier.label })
        }
    }

    @Test("the topology survives a round trip through the definitions format")
    func definitionsRoundTrip() throws {
        let topology = Topology.flow()
        let decoded = try Topology(definitionsJSON: try topology.definitionsJSON())
        #expect(decoded.sorted == topology.sorted)
    }

    @Test("a definitions document with an unknown exchange type is refused with the types that exist")
    func badDefinitions() {
        let document = #"{"exchanges": [{"name": "x", "vhost": "/", "type": "fan-out"}]}"#
        let error = #expect(throws: Topology.DefinitionsError.self) { try Topology(definitionsJSON: Data(document.utf8)) }
        #expect(error?.description.contains("direct, fanout, topic, headers") == true)
    }

    @Test("a renamed topology renames names and dead-letter targets, and nothing else")
    func renaming() throws {
        let renamed = Topology.flow().renamed { "t.\($0)" }
        let queue = try #require(renamed.queues.first { $0.name == "t.default-queue" })
        #expect(queue.arguments["x-dead-letter-exchange"]?.stringValue == "t.flow.dead-letter")
        #expect(queue.arguments["x-queue-type"] == "quorum")
        #expect(renamed.bindings.allSatisfy { $0.exchange.hasPrefix("t.") && $0.queue.hasPrefix("t.") })
    }
}
