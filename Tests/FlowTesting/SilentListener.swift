import FlowAMQP
import Glibc

/// A loopback port that takes no new TCP connection and refuses none: a connect to it
/// waits until its timeout, as one to the address of a vanished host does.
///
/// It listens with a backlog of zero and holds the one connection that fills the queue;
/// the kernel then drops every further SYN, so the client keeps retransmitting. Loopback
/// only, unlike an unroutable address.
public final class SilentListener: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let filler: Int32

    public init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 0) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        guard listener >= 0, bound else { throw AMQPError(.protocolFailure, "could not open a silent listener on loopback (errno \(errno))") }
        port = Int(UInt16(bigEndian: address.sin_port))
        let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.filler = filler
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard filler >= 0, connected else { throw AMQPError(.protocolFailure, "could not fill the silent listener's queue (errno \(errno))") }
    }

    deinit {
        close(filler)
        close(listener)
    }
}
