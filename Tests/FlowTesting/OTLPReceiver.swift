import FlowCore
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// An OTLP/HTTP trace receiver on loopback, run by the tests: what an OpenTelemetry
/// collector would be. It takes `POST /v1/traces` in OTLP's JSON encoding (set
/// `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` on the exporting process) and keeps the spans.
public final class OTLPReceiver: Sendable {
    /// One span as exported, with ids in hex.
    public struct Span: Sendable, CustomStringConvertible {
        /// OTLP's span kinds, as the JSON encoding numbers them.
        public enum Kind: Int, Sendable {
            case unspecified = 0, `internal`, server, client, producer, consumer
        }

        public var service: String
        public var traceID: String
        public var spanID: String
        public var parentSpanID: String?
        public var name: String
        public var kind: Kind
        public var attributes: [String: String]
        public var events: [String]
        /// OTLP's status code: 0 unset, 1 ok, 2 error.
        public var statusCode: Int
        public var linkedSpanIDs: [String]

        public var description: String {
            "\(name) [\(service) \(kind) \(spanID) ← \(parentSpanID ?? "root")] \(attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
        }
    }

    private struct State {
        var spans: [Span] = []
        var unreadable: [String] = []
        var requests = 0
        var bytes = 0
    }

    private let state = Mutex(State())
    private let group: ServiceGroup
    public let port: Int

    /// The `OTEL_EXPORTER_OTLP_ENDPOINT` of the receiver.
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// The environment that makes a `flow` process export every span here, at once.
    public var exporterEnvironment: [String: String] {
        [
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        ]
    }

    public var spans: [Span] { state.withLock { $0.spans } }
    /// Export requests taken, and their bytes, in any encoding.
    public var received: (requests: Int, bytes: Int) { state.withLock { ($0.requests, $0.bytes) } }
    /// Requests it could not read (another encoding, a malformed body), for the test to show.
    public var unreadable: [String] { state.withLock { $0.unreadable } }

    public init() async throws {
        let router = Router()
        let box = Mutex<OTLPReceiver?>(nil)
        router.post("v1/traces") { request, context -> Response in
            let body = try await request.body.collect(upTo: 64 << 20)
            let receiver = box.withLock { $0 }
            receiver?.receive(Array(body.readableBytesView), contentType: request.headers[.contentType] ?? "")
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: "{}")))
        }
        let (ports, listening) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "test.otlp-receiver")
        logger.logLevel = .warning
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "otlp-receiver"),
            onServerRunning: { channel in
                listening.yield(channel.localAddress?.port ?? 0)
                listening.finish()
            },
            logger: logger
        )
        group = ServiceGroup(configuration: .init(services: [application], logger: logger))
        Task { [group] in try await group.run() }
        var port = 0
        for await listened in ports { port = listened }
        self.port = port
        box.withLock { $0 = self }
    }

    public func stop() async {
        await group.triggerGracefulShutdown()
    }

    private func receive(_ body: [UInt8], contentType: String) {
        state.withLock { state in
            state.requests += 1
            state.bytes += body.count
        }
        // Protobuf (the exporters' default) is counted but not read: the benchmark sends it.
        if contentType.hasPrefix("application/x-protobuf") { return }
        guard contentType.hasPrefix("application/json"), let export = try? FlowJSON.decoder.decode(JSONValue.self, from: Data(body)) else {
            state.withLock { $0.unreadable.append("\(contentType): \(body.count) bytes") }
            return
        }
        var received: [Span] = []
        for resourceSpans in export["resourceSpans"]?.arrayValue ?? [] {
            let resource = Self.attributes(resourceSpans["resource"]?["attributes"])
            for scopeSpans in resourceSpans["scopeSpans"]?.arrayValue ?? [] {
                for span in scopeSpans["spans"]?.arrayValue ?? [] {
                    received.append(Span(
                        service: resource["service.name"] ?? "",
                        traceID: Self.hex(span["traceId"]) ?? "", spanID: Self.hex(span["spanId"]) ?? "",
                        parentSpanID: Self.hex(span["parentSpanId"]).flatMap { $0.isEmpty ? nil : $0 },
                        name: span["name"]?.stringValue ?? "",
                        kind: Span.Kind(rawValue: span["kind"]?.intValue ?? 0) ?? .unspecified,
                        attributes: Self.attributes(span["attributes"]),
                        events: (span["events"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue },
                        statusCode: span["status"]?["code"]?.intValue ?? 0,
                        linkedSpanIDs: (span["links"]?.arrayValue ?? []).compactMap { Self.hex($0["spanId"]) }
                    ))
                }
            }
        }
        state.withLock { $0.spans += received }
    }

    /// OTLP's JSON writes ids in hex; protobuf's generic JSON mapping writes bytes in
    /// base64. Either reads as hex.
    private static func hex(_ value: JSONValue?) -> String? {
        guard let text = value?.stringValue else { return nil }
        if text.isEmpty { return "" }
        if (text.count == 32 || text.count == 16), text.allSatisfy(\.isHexDigit) { return text.lowercased() }
        guard let bytes = Data(base64Encoded: text) else { return text }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    private static func attributes(_ value: JSONValue?) -> [String: String] {
        var attributes: [String: String] = [:]
        for attribute in value?.arrayValue ?? [] {
            guard let key = attribute["key"]?.stringValue, let value = attribute["value"] else { continue }
            attributes[key] = value["stringValue"]?.stringValue ?? value["intValue"].map(\.canonicalText)?.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                ?? value["boolValue"].map(\.canonicalText) ?? value["doubleValue"].map(\.canonicalText) ?? value.canonicalText
        }
        return attributes
    }
}
