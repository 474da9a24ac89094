import FlowCore
import FlowObservability
import Foundation
import Logging
import Synchronization
import Testing

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test("each line is one JSON object with the level, message, logger, time, source, metadata and the provider's trace ids")
    func oneObjectPerLine() throws {
        let lines = Mutex<[String]>([])
        let provider = Logger.MetadataProvider { ["trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"] }
        var logger = Logger(label: "flow.test") { label in
            JSONLogHandler(label: label, metadataProvider: provider) { line in lines.withLock { $0.append(line) } }
        }
        logger[metadataKey: "amqp.queue"] = "default-queue"
        logger.info("activity completed\nwith a line break", metadata: ["activity.name": "echo", "attempts": .array(["1", "2"])])
        logger.debug("below the level")

        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        #expect(written[0].hasSuffix("\n") && written[0].dropLast().contains("\n") == false, "one line, the message's line break escaped")
        let object = try FlowJSON.decoder.decode(JSONValue.self, from: Data(written[0].utf8))
        #expect(object["level"]?.stringValue == "info")
        #expect(object["logger"]?.stringValue == "flow.test")
        #expect(object["message"]?.stringValue == "activity completed\nwith a line break")
        #expect(object["activity.name"]?.stringValue == "echo")
        #expect(object["amqp.queue"]?.stringValue == "default-queue")
        #expect(object["attempts"]?.arrayValue?.count == 2)
        #expect(object["trace_id"]?.stringValue == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(object["span_id"]?.stringValue == "00f067aa0ba902b7")
        #expect(object["source"]?.stringValue?.contains("JSONLogHandlerTests.swift:") == true)
        let timestamp = try #require(object["timestamp"]?.stringValue)
        #expect(timestamp.hasSuffix("Z") && timestamp.contains("."), "ISO 8601 in UTC with fractions: \(timestamp)")
    }
}
