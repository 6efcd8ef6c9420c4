import Glibc

/// Which half of a connection `shutdown(2)` closes.
public enum ShutdownDirection: Sendable {
    /// `SHUT_RD`.
    case read
    /// `SHUT_WR`: sends a FIN; the peer reads end of file.
    case write
    /// `SHUT_RDWR`.
    case both

    var rawValue: Int32 {
        switch self {
        case .read: return Int32(SHUT_RD)
        case .write: return Int32(SHUT_WR)
        case .both: return Int32(SHUT_RDWR)
        }
    }
}

/// The outcome of a non-blocking `connect`.
public enum ConnectProgress: Sendable, Equatable {
    /// Connected at once (typical for Unix sockets).
    case connected
    /// `EINPROGRESS`: wait for writability, then read `SO_ERROR`.
    case inProgress
}

/// Socket calls on a `FileDescriptor`. Sockets are always created non-blocking and close-on-exec.
extension FileDescriptor {
    /// `socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)`.
    public static func streamSocket(family: Int32) throws(SystemError) -> FileDescriptor {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        return FileDescriptor(rawValue: try callingOnce { socket(family, type, 0) }.get("socket"))
    }

    /// `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC [| SOCK_NONBLOCK])`.
    public static func socketPair(nonBlocking: Bool = true) throws(SystemError) -> (FileDescriptor, FileDescriptor) {
        var type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        if nonBlocking { type |= Int32(SOCK_NONBLOCK.rawValue) }
        var ends: [Int32] = [-1, -1]
        _ = try callingOnce { socketpair(AF_UNIX, type, 0, &ends) }.get("socketpair")
        return (FileDescriptor(rawValue: ends[0]), FileDescriptor(rawValue: ends[1]))
    }

    /// `bind(2)`.
    public func bind(to address: SocketAddress) throws(SystemError) {
        try address.withSockaddr { pointer, length throws(SystemError) in
            _ = try callingOnce { Glibc.bind(rawValue, pointer, length) }.get("bind")
        }
    }

    /// `listen(2)`.
    public func listen(backlog: Int32 = SOMAXCONN) throws(SystemError) {
        _ = try callingOnce { Glibc.listen(rawValue, backlog) }.get("listen")
    }

    /// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`: the new socket and the peer's address.
    /// `EAGAIN` comes back as `.failure(.wouldBlock)`.
    public func acceptResult() -> Result<(FileDescriptor, SocketAddress?), Errno> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                retryingOnInterrupt { system_accept4(rawValue, address, &length, flags) }
            }
        }
        return result.map { fd in
            let peer = withUnsafePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                    length > 0 ? SocketAddress(address, length: length) : nil
                }
            }
            return (FileDescriptor(rawValue: fd), peer)
        }
    }

    /// `accept4`, throwing (`EAGAIN` throws too).
    public func accept() throws(SystemError) -> (FileDescriptor, SocketAddress?) {
        try acceptResult().get("accept4")
    }

    /// Non-blocking `connect(2)`: `.connected`, `.inProgress`, or the error.
    /// `EINTR` is not retried (the connection continues in the background; treated as in progress).
    public func connectResult(to address: SocketAddress) -> Result<ConnectProgress, Errno> {
        let result: Result<Int32, Errno>
        do {
            result = try address.withSockaddr { pointer, length throws(SystemError) in
                callingOnce { Glibc.connect(rawValue, pointer, length) }
            }
        } catch {
            return .failure(error.errno)
        }
        switch result {
        case .success: return .success(.connected)
        case .failure(let errno) where errno == .inProgress || errno == .interrupted: return .success(.inProgress)
        case .failure(let errno): return .failure(errno)
        }
    }

    /// `connect(2)`, throwing.
    public func connect(to address: SocketAddress) throws(SystemError) -> ConnectProgress {
        try connectResult(to: address).get("connect")
    }

    /// `getsockopt(SOL_SOCKET, SO_ERROR)`: the result of a finished non-blocking connect
    /// (`nil` = success). Reading it clears it.
    public func pendingSocketError() -> Errno? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(rawValue, SOL_SOCKET, SO_ERROR, &value, &length) == -1 { return Errno.current }
        return value == 0 ? nil : Errno(rawValue: value)
    }

    /// `shutdown(2)`; returns the error instead of throwing (ENOTCONN is routine here).
    public func shutdownResult(_ direction: ShutdownDirection) -> Result<Int32, Errno> {
        callingOnce { Glibc.shutdown(rawValue, direction.rawValue) }
    }

    /// `shutdown(2)`, throwing.
    public func shutdown(_ direction: ShutdownDirection) throws(SystemError) {
        _ = try shutdownResult(direction).get("shutdown")
    }

    private func setOption(level: Int32, name: Int32, value: Int32, label: String) throws(SystemError) {
        var value = value
        _ = try callingOnce {
            setsockopt(rawValue, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }.get("setsockopt(\(label))")
    }

    /// `setsockopt(IPPROTO_TCP, TCP_NODELAY)`: send small segments at once (no Nagle delay).
    public func setNoDelay(_ enabled: Bool = true) throws(SystemError) {
        try setOption(level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: enabled ? 1 : 0, label: "TCP_NODELAY")
    }

    /// `setsockopt(SOL_SOCKET, SO_KEEPALIVE)`.
    public func setKeepAlive(_ enabled: Bool = true) throws(SystemError) {
        try setOption(level: SOL_SOCKET, name: SO_KEEPALIVE, value: enabled ? 1 : 0, label: "SO_KEEPALIVE")
    }

    /// `setsockopt(SOL_SOCKET, SO_REUSEADDR)`: rebind a port still in TIME_WAIT.
    public func setReuseAddress(_ enabled: Bool = true) throws(SystemError) {
        try setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: enabled ? 1 : 0, label: "SO_REUSEADDR")
    }

    /// `SO_LINGER` with a zero timeout: the next `close` sends a reset (RST) instead of a FIN
    /// and discards unsent data, so the peer cannot take the stream for a complete one.
    public func setLingerReset() throws(SystemError) {
        var value = linger(l_onoff: 1, l_linger: 0)
        let result = setsockopt(rawValue, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size))
        guard result == 0 else { throw SystemError("setsockopt(SO_LINGER)", Errno(rawValue: errno)) }
    }

    /// `getsockname(2)`: the local address (e.g. the port the kernel chose for port 0).
    public func localAddress() throws(SystemError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                callingOnce { getsockname(rawValue, address, &length) }
            }
        }.get("getsockname")
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddress($0, length: length) }
        }
    }
}

/// `unlink(2)` of a file path (used for stale Unix-socket files).
public func unlinkFile(_ path: String) throws(SystemError) {
    _ = try callingOnce { unlink(path) }.get("unlink")
}
