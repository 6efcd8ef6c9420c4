import Glibc

/// systemd's readiness protocol (`sd_notify(3)`) without libsystemd: one `AF_UNIX` datagram of
/// `KEY=VALUE` lines sent to the socket named by `$NOTIFY_SOCKET`.
///
/// `$NOTIFY_SOCKET` is an absolute path, or `@name` for a name in the abstract namespace (the
/// `@` stands for the leading NUL byte of `sun_path`). Sending never blocks (`MSG_DONTWAIT`) and
/// a failure never stops the caller: every send reports its outcome as a return value, which
/// callers may ignore (systemd may be gone, or the service may not be `Type=notify`).
public struct ServiceNotifier: Sendable, Equatable {
    /// The environment variable systemd sets for `Type=notify` services.
    public static let environmentVariable = "NOTIFY_SOCKET"

    /// Where datagrams go: a Unix-domain path or abstract address.
    public let address: SocketAddress

    /// A notifier for the `$NOTIFY_SOCKET` text `socketName` (`/path` or `@abstract`);
    /// `nil` for anything else (empty, relative, too long, or another transport such as `vsock:`).
    public init?(socketName: String) {
        if socketName.hasPrefix("/") {
            guard let address = SocketAddress(unixPath: socketName) else { return nil }
            self.address = address
        } else if socketName.hasPrefix("@") {
            guard let address = SocketAddress(abstractUnixName: String(socketName.dropFirst())) else { return nil }
            self.address = address
        } else {
            return nil
        }
    }

    /// The notifier named by `$NOTIFY_SOCKET`, or `nil` when it is unset or unusable (not started
    /// by systemd as `Type=notify`). With `unsettingEnvironment`, also removes the variable
    /// (`unsetenv`), so that child processes do not notify in the service's name; do that only
    /// while the process is single-threaded.
    public static func fromEnvironment(unsettingEnvironment: Bool = false) -> ServiceNotifier? {
        guard let value = getenv(environmentVariable) else { return nil }
        let text = String(cString: value)
        if unsettingEnvironment { unsetenv(environmentVariable) }
        return ServiceNotifier(socketName: text)
    }

    /// The datagram for `fields`: one `KEY=VALUE\n` line each, in order. A newline inside a value
    /// would start a new assignment, so it becomes a space. `nil` when a key is empty or contains
    /// `=`, a newline or NUL.
    public static func message(_ fields: [(key: String, value: String)]) -> [UInt8]? {
        var bytes: [UInt8] = []
        for (key, value) in fields {
            let keyBytes = Array(key.utf8)
            guard !keyBytes.isEmpty, !keyBytes.contains(where: { $0 == UInt8(ascii: "=") || $0 == 10 || $0 == 0 }) else {
                return nil
            }
            bytes += keyBytes
            bytes.append(UInt8(ascii: "="))
            bytes += value.utf8.map { $0 == 10 || $0 == 0 ? UInt8(ascii: " ") : $0 }
            bytes.append(10)
        }
        return bytes
    }

    /// Sends one datagram carrying `fields` (`sd_notify`). Returns `.success` when the kernel
    /// took the datagram, or the failed call and its `errno` (`EAGAIN` when systemd's queue is
    /// full, `ECONNREFUSED`/`ENOENT` when nobody listens, `EINVAL` for an unusable key).
    @discardableResult
    public func notify(_ fields: [(key: String, value: String)]) -> Result<Void, SystemError> {
        guard let message = ServiceNotifier.message(fields) else {
            return .failure(SystemError("sd_notify", .invalidArgument))
        }
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let fd: Int32
        switch callingOnce({ socket(AF_UNIX, type, 0) }) {
        case .success(let descriptor): fd = descriptor
        case .failure(let errno): return .failure(SystemError("socket", errno))
        }
        defer { _ = close(fd) }
        let flags = Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)
        let sent: Result<Int, Errno>
        do {
            sent = try address.withSockaddr { pointer, length throws(SystemError) in
                message.withUnsafeBytes { raw in
                    retryingOnInterrupt { sendto(fd, raw.baseAddress, raw.count, flags, pointer, length) }
                }
            }
        } catch {
            return .failure(error)
        }
        switch sent {
        case .success(let count) where count == message.count: return .success(())
        case .success: return .failure(SystemError("sendto", .noBufferSpace))
        case .failure(let errno): return .failure(SystemError("sendto", errno))
        }
    }

    /// `READY=1`: start-up is finished (every pipe listens), or a reload is finished.
    @discardableResult
    public func ready(status: String? = nil) -> Result<Void, SystemError> {
        notify([("READY", "1")] + (status.map { [("STATUS", $0)] } ?? []))
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (required by `Type=notify-reload`): a reload began at
    /// `monotonicMicroseconds` of `CLOCK_MONOTONIC` (default: now). Send `ready()` when it ends.
    @discardableResult
    public func reloading(monotonicMicroseconds: UInt64 = MonotonicClock.nanoseconds / 1000) -> Result<Void, SystemError> {
        notify([("RELOADING", "1"), ("MONOTONIC_USEC", String(monotonicMicroseconds))])
    }

    /// `STOPPING=1`: the service is shutting down (draining connections).
    @discardableResult
    public func stopping(status: String? = nil) -> Result<Void, SystemError> {
        notify([("STOPPING", "1")] + (status.map { [("STATUS", $0)] } ?? []))
    }

    /// `STATUS=text`: a one-line status shown by `systemctl status` (newlines become spaces).
    @discardableResult
    public func status(_ text: String) -> Result<Void, SystemError> {
        notify([("STATUS", text)])
    }
}

extension SocketAddress {
    /// A Linux abstract-namespace Unix address: `sun_path` is a NUL byte followed by `name`
    /// (not NUL-terminated; the length ends the name). `nil` when the name does not fit.
    public init?(abstractUnixName name: String) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let nameBytes = Array(name.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard nameBytes.count + 1 <= capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw[0] = 0
            UnsafeMutableRawBufferPointer(rebasing: raw[1...]).copyBytes(from: nameBytes)
        }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + 1 + nameBytes.count
        self = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddress($0, length: socklen_t(length)) }
        }
    }
}
