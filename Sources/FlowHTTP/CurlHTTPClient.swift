import CCurl
import FlowCore
import Foundation
import Synchronization

/// An HTTP request for ``CurlHTTPClient``.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: Data?
    public var connectTimeout: Duration
    public var totalTimeout: Duration

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: Data? = nil, connectTimeout: Duration = .seconds(10), totalTimeout: Duration = .seconds(120)) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
    }
}

/// A response: status, headers (names lower-cased) and the body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why a request got no HTTP response at all.
public struct HTTPTransportError: Error, CustomStringConvertible {
    public enum Kind: Sendable {
        case timedOut
        case couldNotConnect
        case connectionLost
        case cancelled
        case other
    }

    public var kind: Kind
    public var message: String
    public var description: String { message }
}

/// HTTP over libcurl. Each request in flight has an easy handle of its own, taken from a
/// pool, so concurrent requests never wait on one another; a returned handle keeps its
/// connections open for the next request to the same host. The blocking transfer runs on
/// a thread of its own, never on Swift's cooperative pool.
///
/// libcurl honours `http_proxy`, `https_proxy` and `no_proxy`, and verifies TLS peers.
public final class CurlHTTPClient: Sendable {
    private let idleHandles = Mutex<[HandleBox]>([])
    private let maximumIdleHandles: Int

    /// An easy handle, owned by one request at a time.
    private final class HandleBox: @unchecked Sendable {
        let handle: UnsafeMutableRawPointer
        init(_ handle: UnsafeMutableRawPointer) { self.handle = handle }
        deinit { curl_easy_cleanup(handle) }
    }

    public init(maximumIdleHandles: Int = 32) {
        _ = Self.globalInit
        self.maximumIdleHandles = maximumIdleHandles
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Sends the request and returns the response. `onBodyChunk`, when given, receives the
    /// body as it arrives (server-sent events) and the response's body stays empty.
    public func send(_ request: HTTPRequest, onBodyChunk: (@Sendable (Data) -> Void)? = nil) async throws -> HTTPResponse {
        let box = takeHandle()
        let transfer = Transfer(onBodyChunk: onBodyChunk)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                let thread = Thread { [self] in
                    let result = Self.perform(request, on: box.handle, transfer: transfer)
                    self.returnHandle(box)
                    continuation.resume(with: result)
                }
                thread.stackSize = 1 << 20
                thread.start()
            }
        } onCancel: {
            transfer.cancelled.withLock { $0 = true }
        }
    }

    private func takeHandle() -> HandleBox {
        if let box = idleHandles.withLock({ $0.popLast() }) { return box }
        return HandleBox(curl_easy_init())
    }

    private func returnHandle(_ box: HandleBox) {
        idleHandles.withLock { handles in
            if handles.count < maximumIdleHandles { handles.append(box) }
        }
    }

    /// What the C callbacks write into while a transfer runs.
    final class Transfer: Sendable {
        let onBodyChunk: (@Sendable (Data) -> Void)?
        let body = Mutex(Data())
        let headerLines = Mutex<[String]>([])
        let cancelled = Mutex(false)

        init(onBodyChunk: (@Sendable (Data) -> Void)?) { self.onBodyChunk = onBodyChunk }
    }

    private static func perform(_ request: HTTPRequest, on handle: UnsafeMutableRawPointer, transfer: Transfer) -> Result<HTTPResponse, any Error> {
        curl_easy_reset(handle)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        // Without this, curl waits for a "100 Continue" before sending larger bodies.
        headerList = curl_slist_append(headerList, "Expect:")

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        CCurl_easy_setopt_string(handle, CURLOPT_URL, request.url)
        CCurl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        CCurl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
        CCurl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout.wholeMilliseconds))
        CCurl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(request.totalTimeout.wholeMilliseconds))
        CCurl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        CCurl_easy_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        CCurl_easy_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        CCurl_easy_setopt_write_function(handle, CURLOPT_WRITEFUNCTION, writeBody)
        CCurl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        CCurl_easy_setopt_write_function(handle, CURLOPT_HEADERFUNCTION, writeHeader)
        CCurl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
        CCurl_easy_setopt_xferinfo_function(handle, checkCancelled)
        CCurl_easy_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)
        CCurl_easy_setopt_long(handle, CURLOPT_NOPROGRESS, 0)

        let code: CURLcode
        if let body = request.body {
            code = body.withUnsafeBytes { bytes in
                CCurl_easy_setopt_long(handle, CURLOPT_POSTFIELDSIZE, bytes.count)
                CCurl_easy_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
                return curl_easy_perform(handle)
            }
        } else {
            code = curl_easy_perform(handle)
        }
        guard code == CURLE_OK else {
            let reason = String(cString: curl_easy_strerror(code))
            let kind: HTTPTransportError.Kind
            switch code {
            case CURLE_OPERATION_TIMEDOUT: kind = .timedOut
            case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .couldNotConnect
            case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE: kind = .connectionLost
            case CURLE_ABORTED_BY_CALLBACK: kind = .cancelled
            default: kind = .other
            }
            if kind == .cancelled { return .failure(CancellationError()) }
            // The URL, never the headers: they carry the API key.
            return .failure(HTTPTransportError(kind: kind, message: "\(request.method) \(request.url): \(reason)"))
        }
        var status = 0
        CCurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var headers: [String: String] = [:]
        for line in transfer.headerLines.withLock({ $0 }) {
            // A new status line (a redirect, "100 Continue") starts the headers over.
            if line.hasPrefix("HTTP/") { headers = [:]; continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return .success(HTTPResponse(status: status, headers: headers, body: transfer.body.withLock { $0 }))
    }
}

private func writeBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlHTTPClient.Transfer>.fromOpaque(context).takeUnretainedValue()
    let chunk = Data(bytes: data, count: size * count)
    if let onBodyChunk = transfer.onBodyChunk {
        onBodyChunk(chunk)
    } else {
        transfer.body.withLock { $0.append(chunk) }
    }
    return size * count
}

private func writeHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlHTTPClient.Transfer>.fromOpaque(context).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
    transfer.headerLines.withLock { $0.append(line.trimmingCharacters(in: .whitespacesAndNewlines)) }
    return size * count
}

private func checkCancelled(_ context: UnsafeMutableRawPointer?, _: curl_off_t, _: curl_off_t, _: curl_off_t, _: curl_off_t) -> Int32 {
    guard let context else { return 0 }
    let transfer = Unmanaged<CurlHTTPClient.Transfer>.fromOpaque(context).takeUnretainedValue()
    return transfer.cancelled.withLock { $0 } ? 1 : 0
}

