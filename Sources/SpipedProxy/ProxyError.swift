import SpipedProtocol
import SpipedSystem

/// Why the proxy (or one `spipe` connection) failed.
public enum ProxyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A configuration value is unusable (what is wrong).
    case invalidConfiguration(String)
    /// A source, target or bind address could not be resolved.
    case addressResolutionFailed(AddressResolutionError)
    /// The source address could not be bound or listened on (address, cause).
    case listenFailed(address: String, SystemError)
    /// A Unix-socket source path names a file that is not a socket (path, what it is); it is
    /// never replaced.
    case sourcePathOccupied(path: String, by: FileKind)
    /// Every address of the target refused or failed (target as written, last cause).
    case connectFailed(address: String, SystemError)
    /// Connecting to the target plus the handshake took longer than `-o` seconds.
    case timedOut
    /// The peer broke the protocol: wrong key, bad MAC, truncated stream, ...
    case protocolFailure(SpipedProtocolError)
    /// The peer reset the connection before it finished.
    case connectionReset
    /// Some other system call failed.
    case system(SystemError)
    /// The encrypted stream ended in the middle of a packet; the verified packets before the
    /// cut were delivered and the plaintext side was reset.
    case truncatedStream
    /// (Client end) the server closed or reset the connection during the handshake.
    case handshakeRefusedByServer
    /// `spipe`: reading standard input failed (so not everything was sent).
    case standardInputUnreadable(Errno)
    /// `spipe`: writing standard output failed (so not everything received was delivered).
    case standardOutputUnwritable(Errno)

    /// A sentence for users.
    public var description: String {
        switch self {
        case .invalidConfiguration(let what):
            return "invalid configuration: \(what)"
        case .addressResolutionFailed(let failure):
            return failure.description
        case .listenFailed(let address, let cause):
            return "cannot listen on \(address): \(cause)"
        case .sourcePathOccupied(let path, let kind):
            return "cannot listen on \(path): \(kind) is in the way; refusing to replace it"
        case .connectFailed(let address, let cause):
            return "cannot connect to \(address): \(cause)"
        case .timedOut:
            return "connection timed out (connect and handshake took longer than allowed)"
        case .protocolFailure(let failure):
            return "protocol error: \(ProxyError.describe(failure))"
        case .connectionReset:
            return "connection reset by peer"
        case .system(let failure):
            return failure.description
        case .truncatedStream:
            return "the encrypted stream was cut in the middle of a packet; delivered the verified data and reset the other side"
        case .handshakeRefusedByServer:
            return "handshake refused by the server: the key files probably differ (or the server requires forward secrecy), or the target is not a spiped -d"
        case .standardInputUnreadable(let errno):
            return "reading standard input: \(errno)"
        case .standardOutputUnwritable(let errno):
            return "writing standard output: \(errno)"
        }
    }

    /// A short name of the kind of failure, for aggregating repeated log lines and metrics.
    var aggregationCause: String {
        switch self {
        case .invalidConfiguration: return "configuration"
        case .addressResolutionFailed: return "resolve"
        case .listenFailed: return "listen"
        case .connectFailed: return "target-connect"
        case .timedOut: return "timeout"
        case .protocolFailure(.handshakeAuthenticationFailed): return "handshake-authentication"
        case .protocolFailure(.forwardSecrecyRequired): return "forward-secrecy"
        case .protocolFailure(.truncated): return "handshake-truncated"
        case .protocolFailure(.publicValueRejected): return "public-value"
        case .protocolFailure(.packetAuthenticationFailed): return "packet-authentication"
        case .protocolFailure: return "protocol"
        case .connectionReset: return "reset"
        case .system: return "system"
        case .truncatedStream: return "stream-truncated"
        case .handshakeRefusedByServer: return "handshake-refused"
        case .standardInputUnreadable, .standardOutputUnwritable: return "standard-io"
        case .sourcePathOccupied: return "listen"
        }
    }

    private static func describe(_ failure: SpipedProtocolError) -> String {
        switch failure {
        case .handshakeAuthenticationFailed: return "handshake did not authenticate (a different key, or not a spiped client)"
        case .packetAuthenticationFailed: return "packet authentication failed"
        case .truncated: return "connection closed during the handshake"
        case .forwardSecrecyRequired: return "peer does not provide forward secrecy (-f) but -g is set"
        default: return "\(failure)"
        }
    }
}

extension AddressSpec {
    /// The address as a user would write it, for messages.
    var displayText: String {
        switch self {
        case .unix(let path): return path
        case .hostName(let host, let port): return "\(host):\(port)"
        case .ipv4(let literal, let port): return "[\(literal)]:\(port)"
        case .ipv6(let literal, let port): return "[\(literal)]:\(port)"
        }
    }
}
