import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Who may use the console, and the guards on everything that changes state.
///
/// - Reading: open on loopback without a token; otherwise a bearer token
///   (`Authorization: Bearer …`) or the session cookie the login form sets.
/// - Changing: a POST, carrying the page's CSRF token, from a page of this console (an
///   `Origin` other than the console's own is refused).
/// - Every answer says how a browser may treat it: no framing, no sniffing, and scripts,
///   styles and images from the console alone.
final class ConsoleSecurity: Sendable {
    let token: String?
    /// A fresh secret per process: forms carry it, and a page from elsewhere cannot read it.
    let csrfToken: String
    private let sessions = Mutex<Set<String>>([])
    static let cookieName = "flow_console_session"

    init(token: String?) {
        self.token = token
        self.csrfToken = Self.randomToken()
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Constant-time comparison, so response times say nothing about a guessed secret.
    static func same(_ left: String, _ right: String) -> Bool {
        let a = Array(left.utf8), b = Array(right.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<min(a.count, b.count) { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    func isAuthenticated(_ request: Request) -> Bool {
        guard let token else { return true }
        if let header = request.headers[.authorization], header.hasPrefix("Bearer "), Self.same(String(header.dropFirst(7)), token) {
            return true
        }
        if let session = request.cookies[Self.cookieName]?.value {
            return sessions.withLock { $0.contains(session) }
        }
        return false
    }

    /// Checks a login form's token and opens a session for it.
    func logIn(with candidate: String) -> String? {
        guard let token, Self.same(candidate, token) else { return nil }
        let session = Self.randomToken()
        sessions.withLock { _ = $0.insert(session) }
        return session
    }

    func isSameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        guard let host = request.head.authority else { return false }
        return origin == "http://\(host)" || origin == "https://\(host)"
    }

    static let headers: [(HTTPField.Name, String)] = [
        (.contentSecurityPolicy, "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("X-Frame-Options")!, "DENY"),
        (HTTPField.Name("Referrer-Policy")!, "same-origin"),
        (.cacheControl, "no-store"),
    ]
}

/// Enforces ``ConsoleSecurity`` on every request.
struct ConsoleSecurityMiddleware<Context: RequestContext>: RouterMiddleware {
    let security: ConsoleSecurity

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await guarded(request, context: context, next: next)
        for (name, value) in ConsoleSecurity.headers where response.headers[name] == nil {
            response.headers[name] = value
        }
        return response
    }

    private func guarded(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let open = path == "/login" || path.hasPrefix("/static/") || path == "/healthz"
        if !open, !security.isAuthenticated(request) {
            if request.method == .get || request.method == .head {
                return Response(status: .seeOther, headers: [.location: "/login"])
            }
            return ConsolePages.plain(.unauthorized, "sign in first: send Authorization: Bearer <FLOW_CONSOLE_TOKEN>, or use the login page")
        }
        switch request.method {
        case .get, .head:
            return try await next(request, context)
        case .post:
            guard security.isSameOrigin(request) else {
                return ConsolePages.plain(.forbidden, "this form came from another site (Origin \(request.headers[.origin] ?? "")): the console accepts changes only from its own pages")
            }
            return try await next(request, context)
        default:
            return ConsolePages.plain(.methodNotAllowed, "the console answers GET and POST only")
        }
    }
}
