import FlowCore
import FlowTesting
import Foundation
import Testing

@Suite("broker/definitions.json")
struct DefinitionsFileTests {
    @Test("broker/definitions.json declares exactly the topology the code declares")
    func definitionsMatchCode() throws {
        let data = try Data(contentsOf: Repository.file("broker/definitions.json"))
        let fromFile = try Topology(definitionsJSON: data)
        let fromCode = Topology.flow()
        #expect(fromFile.sorted.exchanges == fromCode.sorted.exchanges)
        #expect(fromFile.sorted.queues == fromCode.sorted.queues)
        #expect(fromFile.sorted.bindings == fromCode.sorted.bindings)
    }
}
