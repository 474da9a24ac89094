import FlowCore
import Foundation
import Testing

@Suite("reply messages")
struct ActivityReplyTests {
    @Test("a completed reply has the documented JSON shape and keeps the output as JSON")
    func completedShape() throws {
        let reply = ActivityReply(
            status: .completed, activity: "process_document_upload", messageID: "m-1", attempt: 1,
            output: try JSONText(validating: #"{"pages": 3, "title": "Q3"}"#)
        )
        let data = try FlowJSON.encode(reply)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["protocol"] as? Int == 1)
        #expect(object["status"] as? String == "completed")
        #expect(object["message_id"] as? String == "m-1")
        #expect((object["output"] as? [String: Any])?["pages"] as? Int == 3)
        let decoded = try FlowJSON.decoder.decode(ActivityReply.self, from: data)
        #expect(decoded == reply)
    }

    @Test("a failed reply carries the error type, message and whether to retry")
    func failedShape() throws {
        let reply = ActivityReply(
            status: .failed, activity: "nope", messageID: "m-2", attempt: 3,
            error: .init(type: "UnknownActivity", message: "no activity 'nope' on default-queue", retryable: false)
        )
        let decoded = try FlowJSON.decoder.decode(ActivityReply.self, from: try FlowJSON.encode(reply))
        #expect(decoded.error?.retryable == false)
        #expect(decoded.error?.type == "UnknownActivity")
        #expect(decoded.output == nil)
    }

    @Test("JSON text refuses what does not parse")
    func invalidJSON() {
        #expect(throws: (any Error).self) { try JSONText(validating: "{not json") }
    }
}
