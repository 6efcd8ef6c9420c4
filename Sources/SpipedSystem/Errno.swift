import Glibc

/// A C `errno` value with a readable name (after apple/swift-system's `Errno`).
///
/// Only the values this project reacts to have names; any other value is still carried in
/// `rawValue` and described by `strerror`.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The C `errno` number.
    public let rawValue: Int32

    /// Wraps a C `errno` number.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(rawValue: errno) }

    /// `EINTR`: a signal interrupted the call; it is retried (in `retryingOnInterrupt` only).
    public static let interrupted = Errno(rawValue: EINTR)
    /// `EAGAIN` (== `EWOULDBLOCK`): a non-blocking call would have to wait.
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    /// `EINPROGRESS`: a non-blocking `connect` has started.
    public static let inProgress = Errno(rawValue: EINPROGRESS)
    /// `ECONNRESET`: the peer reset the connection.
    public static let connectionReset = Errno(rawValue: ECONNRESET)
    /// `ECONNREFUSED`: nothing listens at the address.
    public static let connectionRefused = Errno(rawValue: ECONNREFUSED)
    /// `ECONNABORTED`: a connection was aborted before `accept` took it.
    public static let connectionAborted = Errno(rawValue: ECONNABORTED)
    /// `ENOTCONN`: the socket is not (or no longer) connected.
    public static let notConnected = Errno(rawValue: ENOTCONN)
    /// `EPIPE`: writing to a socket whose peer stopped reading.
    public static let brokenPipe = Errno(rawValue: EPIPE)
    /// `EADDRINUSE`: the address is already bound.
    public static let addressInUse = Errno(rawValue: EADDRINUSE)
    /// `EMFILE`: this process has no file descriptors left.
    public static let tooManyOpenFiles = Errno(rawValue: EMFILE)
    /// `ENFILE`: the system has no file descriptors left.
    public static let tooManyOpenFilesInSystem = Errno(rawValue: ENFILE)
    /// `ENOBUFS`: the kernel is out of socket buffers.
    public static let noBufferSpace = Errno(rawValue: ENOBUFS)
    /// `ENOMEM`: the kernel is out of memory.
    public static let outOfMemory = Errno(rawValue: ENOMEM)
    /// `ETIMEDOUT`: a connection attempt or keep-alive timed out.
    public static let timedOut = Errno(rawValue: ETIMEDOUT)
    /// `ENOENT`: no such file or directory.
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    /// `EPERM`: the operation is not permitted (e.g. `epoll_ctl` on a regular file).
    public static let notPermitted = Errno(rawValue: EPERM)
    /// `EINVAL`: an argument is invalid.
    public static let invalidArgument = Errno(rawValue: EINVAL)
    /// `EBADF`: not an open file descriptor.
    public static let badFileDescriptor = Errno(rawValue: EBADF)
    /// `EPROTO`: a protocol error (Linux `accept` may report a network error this way).
    public static let protocolError = Errno(rawValue: EPROTO)
    /// `EHOSTUNREACH`: no route to the host.
    public static let hostUnreachable = Errno(rawValue: EHOSTUNREACH)
    /// `ENETUNREACH`: the network is unreachable.
    public static let networkUnreachable = Errno(rawValue: ENETUNREACH)

    /// The C library's text for this value (`strerror`).
    public var description: String {
        guard let text = strerror(rawValue) else { return "errno \(rawValue)" }
        return String(cString: text)
    }

    /// True for the errors that mean "the peer went away": an ordinary close, not a failure.
    public var isConnectionClosure: Bool {
        self == .connectionReset || self == .notConnected || self == .brokenPipe
    }
}

/// Runs a system call, retrying while it fails with `EINTR`; the single place that decides
/// about `EINTR`. `body` returns the call's result and `-1` on failure (with `errno` set).
@inline(__always)
func retryingOnInterrupt<Value: BinaryInteger>(_ body: () -> Value) -> Result<Value, Errno> {
    while true {
        let value = body()
        if value != -1 { return .success(value) }
        let failure = Errno.current
        if failure != .interrupted { return .failure(failure) }
    }
}

/// Runs a system call once (for calls where `EINTR` must not be retried, such as `close`).
@inline(__always)
func callingOnce<Value: BinaryInteger>(_ body: () -> Value) -> Result<Value, Errno> {
    let value = body()
    return value == -1 ? .failure(Errno.current) : .success(value)
}
